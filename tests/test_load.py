"""Load, for real: 100 clients sending requests and answering them for 12 seconds against the
served dashboard (gunicorn, PostgreSQL, Redis, a `flask worker` dispatcher, the PagerDuty
fake), with watchers on the live stream. Nothing may fail, be lost, or reach a watcher out of
order. SENDAUTH_TEST_LOAD_CLIENTS and SENDAUTH_TEST_LOAD_SECONDS set how many and how long
(200 and 60 for the README's measured minute): 100 clients keep the two workers saturated as
200 do (each waits on its last answer), at half the suite's time."""
import json
import os
import statistics
import threading
import time
import uuid
from collections import Counter, defaultdict

import pytest
import requests
from sqlalchemy import select

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, Transaction
from tests.support import servers
from tests.support.accounts import PASSWORD, create_user
from tests.support.config import REDIS_URL, base_test_config, need, redis_available
from tests.support.helpers import configure_pagerduty, wait_until
from tests.support.sse import HttpStream

from .fakes.pagerduty import FakePagerDuty

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CLIENTS = int(os.environ.get("SENDAUTH_TEST_LOAD_CLIENTS", "100"))
SECONDS = float(os.environ.get("SENDAUTH_TEST_LOAD_SECONDS", "12"))
REQUESTOR_WATCHERS = 3
REVIEWER_WATCHERS = 2
ANSWER_DEADLINE = 60  # seconds for any one request or incident: beyond it, something hangs


class PagerDutyInbox(FakePagerDuty):
    """The PagerDuty fake, with each incident handed to the client waiting for it."""

    def __init__(self):
        super().__init__()
        self._arrived = defaultdict(threading.Event)

    def process(self, path, headers, body, raw):
        answer = super().process(path, headers, body, raw)
        if answer.status == 202 and body["event_action"] == "trigger":
            with self._lock:
                self._arrived[body["dedup_key"]].set()
        return answer

    def incident_link(self, dedup_key, timeout):
        with self._lock:
            arrived = self._arrived[dedup_key]
        assert arrived.wait(timeout), f"no incident for {dedup_key} in {timeout} s"
        with self._lock:
            incident = next(body for (_, key), body in self.incidents.items() if key == dedup_key)
        return incident["links"][0]["href"]


class Tally:
    """What the clients saw: every response's status and time, and every transaction."""

    def __init__(self):
        self._lock = threading.Lock()
        self.statuses = Counter()
        self.latencies = defaultdict(list)
        self.failures = []
        self.transactions = []
        self.incident_waits = []
        self.signed_in = 0
        self.start = threading.Event()
        self.stop_at = None

    def request(self, kind, session, method, url, **kwargs):
        started = time.monotonic()
        try:
            response = session.request(method, url, timeout=ANSWER_DEADLINE,
                                       allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            with self._lock:
                # The kind, not the address: a link's address holds its answer token.
                self.failures.append(f"{kind}: {exc.__class__.__name__} after "
                                     f"{time.monotonic() - started:.2f} s")
            raise
        with self._lock:
            self.statuses[response.status_code] += 1
            self.latencies[kind].append(time.monotonic() - started)
        return response


def login(url, email):
    session = requests.Session()
    # A connection per request: a kept-alive one that gunicorn closes after its keepalive
    # (5 s) just as the client reuses it is reset, and requests does not retry a POST.
    session.headers["Connection"] = "close"
    form = session.get(f"{url}/login", timeout=ANSWER_DEADLINE).text
    response = session.post(f"{url}/login", data={
        "email": email, "password": PASSWORD, "csrf_token": servers.CSRF.search(form).group(1)},
        timeout=ANSWER_DEADLINE, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    return session


def client(url, n, fake, tally, authenticator):
    """One person sending requests one after another, and the person they ask answering each:
    the code from the requestor's page, and an assertion from the user's passkey."""
    requestor = login(url, f"requestor{n}@example.com")
    user = login(url, f"member{n}@example.com")
    token = servers.CSRF.search(requestor.get(f"{url}/transactions/new").text).group(1)
    with tally._lock:
        tally.signed_in += 1
    tally.start.wait()
    while time.monotonic() < tally.stop_at:
        sent = tally.request("send", requestor, "POST", f"{url}/transactions/new", data={
            "csrf_token": token, "user": f"member{n}@example.com",
            "message": f"Load test {n}: confirm it is you"})
        assert sent.status_code == 302, (sent.status_code, sent.text[:300])
        public_id = sent.headers["Location"].rsplit("/", 1)[1]
        with tally._lock:
            tally.transactions.append(public_id)
        started = time.monotonic()
        link = fake.incident_link(public_id, ANSWER_DEADLINE).replace("http://sendauth.test", url)
        with tally._lock:
            tally.incident_waits.append(time.monotonic() - started)
        page = tally.request("open link", user, "GET", link)
        assert page.status_code == 200, (page.status_code, page.text[:300])
        shown = tally.request("requestor page", requestor, "GET",
                              f"{url}/transactions/{public_id}")
        code = servers.BINDING_CODE.search(shown.text).group(1)
        csrf = servers.CSRF.search(page.text).group(1)
        options = tally.request("passkey options", user, "POST", f"{link}/passkey-options",
                                headers={"X-CSRFToken": csrf})
        assert options.status_code == 200, (options.status_code, options.text[:300])
        answered = tally.request("answer", user, "POST", link, data={
            "csrf_token": csrf, "decision": "verify", "code": code,
            "credential": json.dumps(authenticator.get(options.json()))})
        assert answered.status_code == 200, (answered.status_code, answered.text[:300])


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@pytest.mark.timeout(SECONDS + 180)
def test_clients_sending_and_answering_at_once_lose_nothing_and_get_no_server_error(tmp_path,
                                                                       served_database):
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    app = create_app(base_test_config(tmp_path, SQLALCHEMY_DATABASE_URI=served_database,
                                      SECRET_KEY=servers.SECRET_KEY))
    authenticators = {}
    for n in range(CLIENTS):
        create_user(app, "requestor", f"requestor{n}@example.com")
        authenticators[n] = create_user(app, "member", f"member{n}@example.com",
                                        notify_pagerduty=True).authenticator
    create_user(app, "reviewer", "rita@example.com")
    configure_pagerduty(app)
    fake = PagerDutyInbox().start()
    env = servers.environment(
        tmp_path, SQLALCHEMY_DATABASE_URI=served_database, REDIS_URL=REDIS_URL,
        REDIS_CHANNEL_PREFIX=f"sendauth-load-{uuid.uuid4().hex[:8]}",
        PAGERDUTY_EVENTS_URL=fake.url, BASE_URL="http://sendauth.test", DISPATCHER="off",
        RATELIMIT_ENABLED="false", DELIVERY_RATE_LIMITS=json.dumps({}),
        SSE_HEARTBEAT_SECONDS=1, DISPATCHER_IDLE_SECONDS=0.5, ACCESS_LOG="/dev/null")
    server = servers.gunicorn(env, tmp_path, workers=2)
    dispatcher = servers.worker(env, tmp_path, concurrency=8)
    watchers = {}
    try:
        for n in range(REQUESTOR_WATCHERS):
            watchers[f"requestor{n}@example.com"] = HttpStream(
                login(server.url, f"requestor{n}@example.com"), f"{server.url}/transactions/stream")
        for n in range(REVIEWER_WATCHERS):
            watchers[f"reviewer {n}"] = HttpStream(
                login(server.url, "rita@example.com"), f"{server.url}/transactions/stream")

        tally, errors = Tally(), []

        def run(n):
            try:
                client(server.url, n, fake, tally, authenticators[n])
            except Exception as exc:  # reported below; the client stops
                errors.append(f"client {n} ({'running' if tally.start.is_set() else 'signing in'}):"
                              f" {exc!r}"[:500])

        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        # Sign-ins first (400 of them), then the minute starts for everyone at once.
        wait_until(lambda: errors or tally.signed_in == CLIENTS, timeout=120, interval=0.2,
                   message="every client signed in")
        began = time.monotonic()
        tally.stop_at = began + SECONDS
        tally.start.set()
        for thread in threads:
            thread.join(SECONDS + ANSWER_DEADLINE * 3)
        took = time.monotonic() - began
        assert not errors and not tally.failures, (errors[:5], tally.failures[:5])
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        server_errors = sum(n for status, n in tally.statuses.items() if status >= 500)
        assert server_errors == 0, tally.statuses

        with app.app_context():
            rows = db.session.execute(
                select(Transaction.public_id, Transaction.status, Transaction.requestor_id)
            ).all()
            deliveries = Counter(db.session.execute(
                select(Transaction.public_id, Delivery.status).join(Delivery.transaction)).all())
            kinds = Counter(db.session.execute(
                select(Transaction.public_id, Event.kind).join(Event.transaction)).all())
            visible = db.session.execute(
                select(Event.id, Transaction.requestor_id).join(Event.transaction)
                .order_by(Event.id)).all()
            emails = dict(db.session.execute(db.text("SELECT email, id FROM users")).all())
            db.session.remove()
        sent = tally.transactions
        assert sorted(public_id for public_id, _, _ in rows) == sorted(sent)
        assert {status for _, status, _ in rows} == {"verified"}
        assert deliveries == {(public_id, "sent"): 1 for public_id in sent}
        once = {"transaction.created", "delivery.sent", "passkey.used", "transaction.verified"}
        assert {key: n for key, n in kinds.items() if key[1] in once} == {
            (public_id, kind): 1 for public_id in sent for kind in once}
        # Nothing else happened to them, but perhaps a retry (a send that timed out under load).
        assert {kind for _, kind in kinds} <= once | {"delivery.retrying"}
        assert len(fake.incidents) == len(sent)

        for who, watcher in watchers.items():
            requestor_id = emails.get(who)
            ids = [i for i, owner in visible if requestor_id is None or owner == requestor_id]
            watcher.read_until(lambda w, ids=ids: len(w.events) >= len(ids), timeout=30)
            got = [event["id"] for event in watcher.events]
            assert got == ids, f"{who}: {len(got)} events, {len(ids)} in the table; in order?"
            watcher.close()

        all_latencies = [t for values in tally.latencies.values() for t in values]
        print(f"\nload: {CLIENTS} clients, {took:.1f} s: {len(sent)} transactions "
              f"({len(sent) / took:.1f}/s), {sum(tally.statuses.values())} requests "
              f"({sum(tally.statuses.values()) / took:.1f}/s), statuses {dict(tally.statuses)}; "
              f"latency p50 {statistics.median(all_latencies) * 1000:.0f} ms, "
              f"p99 {percentile(all_latencies, 0.99) * 1000:.0f} ms; "
              + "; ".join(f"{kind} p50 {statistics.median(v) * 1000:.0f} ms "
                          f"p99 {percentile(v, 0.99) * 1000:.0f} ms"
                          for kind, v in tally.latencies.items())
              + f"; send to incident p50 {statistics.median(tally.incident_waits):.1f} s "
              f"p99 {percentile(tally.incident_waits, 0.99):.1f} s"
              + f"; watchers saw {[len(w.events) for w in watchers.values()]} events")
    finally:
        for watcher in watchers.values():
            watcher.close()
        assert dispatcher.stop() == 0, dispatcher.log()[-2000:]
        assert server.stop() == 0, server.log()[-2000:]
        fake.stop()
        with app.app_context():
            db.engine.dispose()

