"""Scale-out, for real: gunicorn worker processes sharing Redis and PostgreSQL, and several
dispatcher processes claiming from one outbox."""
import uuid
from collections import Counter

import pytest
from sqlalchemy import text

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from tests.support import servers
from tests.support.accounts import create_user
from tests.support.config import REDIS_URL, base_test_config, need, redis_available
from tests.support.helpers import configure_pagerduty, send_request

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def seeded(served_database, tmp_path):
    """People and the PagerDuty integration, written through the app's own services."""
    app = create_app(base_test_config(tmp_path, SQLALCHEMY_DATABASE_URI=served_database,
                                      SECRET_KEY=servers.SECRET_KEY))
    people = {
        "requestor": create_user(app, "requestor", "hana@example.com"),
        "reviewer": create_user(app, "reviewer", "rita@example.com"),
        "member": create_user(app, "member", "uma@example.com", notify_pagerduty=True),
    }
    configure_pagerduty(app)
    yield app, people
    with app.app_context():
        db.engine.dispose()


def test_watchers_on_two_gunicorn_workers_see_every_event(tmp_path, seeded, served_database,
                                                          fake_pagerduty):
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    _, people = seeded
    env = servers.environment(
        tmp_path, SQLALCHEMY_DATABASE_URI=served_database, REDIS_URL=REDIS_URL,
        REDIS_CHANNEL_PREFIX=f"sendauth-test-{uuid.uuid4().hex[:8]}",
        PAGERDUTY_EVENTS_URL=fake_pagerduty.url, BASE_URL="http://sendauth.test",
        SSE_HEARTBEAT_SECONDS=0.5)
    first, second = (servers.gunicorn(env, tmp_path, name=n) for n in ("first", "second"))
    try:
        watchers = []
        for server in (first, second):
            reviewer = servers.Browser(server.url)
            reviewer.login("rita@example.com")
            watchers.append(reviewer.watch())

        requestor = servers.Browser(first.url)
        requestor.login("hana@example.com")
        sent = requestor.post("/transactions/new", {"user": "uma@example.com",
                                                    "message": "Confirm the VPN reset"})
        assert sent.status_code == 302, sent.text[:300]
        public_id = sent.headers["Location"].rsplit("/", 1)[1]

        fake_pagerduty.wait_for(lambda fake: len(fake.incidents) == 1, timeout=15)
        (incident,) = fake_pagerduty.incidents.values()
        path = incident["links"][0]["href"].replace("http://sendauth.test", "")
        user = servers.Browser(second.url)
        user.login("uma@example.com")
        answered = user.verify(path, people["member"].authenticator,
                               requestor.binding_code(public_id))
        assert answered.status_code == 200, answered.text[:300]

        expected = {"transaction.created", "delivery.sent", "transaction.verified"}
        for watcher in watchers:
            watcher.read_until(lambda w: expected <= {e["kind"] for e in w.events
                                                      if e["transaction"]["id"] == public_id})
        assert [e["id"] for e in watchers[0].events] == [e["id"] for e in watchers[1].events]
        for watcher in watchers:
            watcher.close()
    finally:
        for server in (first, second):
            assert server.stop() == 0, server.log()[-2000:]


def test_two_dispatcher_processes_send_each_delivery_exactly_once(tmp_path, seeded,
                                                                  served_database,
                                                                  fake_pagerduty):
    app, people = seeded
    count = 40
    sent = [send_request(app, people["requestor"], people["member"], message=f"n{n}")
            for n in range(count)]
    env = servers.environment(tmp_path, SQLALCHEMY_DATABASE_URI=served_database,
                              PAGERDUTY_EVENTS_URL=fake_pagerduty.url)
    dispatchers = [servers.worker(env, tmp_path, name=f"worker{n}") for n in range(2)]
    try:
        fake_pagerduty.wait_for(lambda fake: len(fake.incidents) == count, timeout=30)
    finally:
        codes = [d.stop() for d in dispatchers]
    assert codes == [0, 0], [d.log()[-2000:] for d in dispatchers]
    triggers = Counter(r.body["dedup_key"] for r in fake_pagerduty.received)
    assert sorted(triggers) == sorted(sent)
    assert set(triggers.values()) == {1}, "no delivery was sent twice"
    with app.app_context():
        claimers = db.session.execute(text(
            "SELECT count(DISTINCT status), min(status) FROM deliveries")).one()
    assert tuple(claimers) == (1, "sent")
