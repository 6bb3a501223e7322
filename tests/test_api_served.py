"""The API as `make serve` runs it: gunicorn's gevent worker. A script waiting on a request
(``?wait=``) holds a greenlet, not the worker: another request is answered meanwhile, and the
wait ends as soon as that request cancels it."""
import threading
import time

import requests

from tests.support.api import make_key


def test_a_wait_under_gevent_ends_when_another_request_cancels(dashboard):
    site = dashboard()
    key = make_key(site.app, site.requestor)
    server = site.serve()
    headers = {"Authorization": f"Bearer {key}"}
    sent = requests.post(f"{server.url}/api/v1/transactions", headers=headers, timeout=10,
                         json={"user": "uma@example.com", "message": "Is this you?"})
    assert sent.status_code == 201, sent.text
    url = f"{server.url}/api/v1/transactions/{sent.json()['id']}"
    waited = {}

    def wait():
        started = time.monotonic()
        waited["answer"] = requests.get(url, params={"wait": 30}, headers=headers, timeout=40)
        waited["seconds"] = time.monotonic() - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)  # the waiter is waiting (nothing to poll for: it answers once cancelled)
    assert requests.get(url, headers=headers, timeout=5).json()["status"] == "pending"
    cancelled = requests.post(f"{url}/cancel", headers=headers, timeout=5)
    assert cancelled.status_code == 200
    waiter.join(40)
    assert waited["answer"].json()["status"] == "cancelled"
    assert 0.5 <= waited["seconds"] < 5
