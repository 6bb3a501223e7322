"""Redis and PostgreSQL going away, for real (issue 25, items 11 and 12): the app's processes
reach each through a loopback proxy (tests/support/proxy.py) that the test cuts (every
connection closed, new ones refused: a crash) or pauses (nothing moves: a hung server), then
restores; the machine's shared servers are never touched. Send times are measured and printed
for each phase, never asserted."""
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.engine import make_url

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, Transaction
from tests.support import servers
from tests.support.accounts import create_user
from tests.support.config import REDIS_URL, make_app, need, redis_available
from tests.support.helpers import (
    configure_pagerduty,
    configure_slack,
    configure_sms,
    wait_until,
)
from tests.support.proxy import TcpProxy
from tests.support.sse import HttpStream

from .fakes.http import Answer

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


# -- the proxy itself -----------------------------------------------------------------------


@pytest.fixture
def echo_server():
    """A TCP server on 127.0.0.1 that sends back what it reads."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    def echo(connection):
        with connection:
            while data := connection.recv(4096):
                connection.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()
    listener.close()


def test_the_proxy_cuts_pauses_and_restores(echo_server):
    import socket

    proxy = TcpProxy(echo_server, "echo")
    try:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        client.sendall(b"one")
        assert client.recv(16) == b"one"
        proxy.pause()
        client.sendall(b"two")
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):  # held: nothing comes back
            client.recv(16)
        late = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)  # taken, silent
        proxy.restore()
        client.settimeout(2)
        assert client.recv(16) == b"two", "what was held is passed on"
        late.sendall(b"three")
        assert late.recv(16) == b"three"
        proxy.cut()
        assert client.recv(16) == b"", "every connection closed"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        proxy.restore()
        again = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        again.sendall(b"four")
        assert again.recv(16) == b"four"
        for sock in (client, late, again):
            sock.close()
    finally:
        proxy.close()


# -- what the tests share -------------------------------------------------------------------


def summary(seconds):
    if not seconds:
        return "no sends"
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (f"p50 {statistics.median(ordered) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms ({len(ordered)} sends)")


class SteadySends:
    """Requests sent through the form at ``rate`` a second, each in a thread of its own (a
    slow send never delays the next), timed and labelled with the phase it began in."""

    def __init__(self, url, senders, user_email, rate):
        self.url, self.senders, self.user_email = url, senders, user_email
        self.interval = 1 / rate
        self.phase = "before"
        self.results = []  # (phase, seconds, status or error, public id)
        self._lock = threading.Lock()
        self._begun = Counter()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="send")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def run_phase(self, phase, sends):
        """The next ``sends`` sends begin in ``phase``; returns once they have begun."""
        self.phase = phase
        wait_until(lambda: self._begun[phase] >= sends, timeout=sends * self.interval + 30,
                   interval=0.01, message=f"{sends} sends begun in {phase}")

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self._pool.shutdown(wait=True)

    def _run(self):
        n, due = 0, time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                self._begun[self.phase] += 1
            self._pool.submit(self._send, n, self.phase)
            n, due = n + 1, due + self.interval
            self._stop.wait(max(0.0, due - time.monotonic()))

    def _send(self, n, phase):
        cookies, token = self.senders[n % len(self.senders)]
        started = time.monotonic()
        try:
            response = requests.post(f"{self.url}/transactions/new", cookies=cookies, data={
                "csrf_token": token, "user": self.user_email, "message": f"Outage test {n}"},
                timeout=60, allow_redirects=False, headers={"Connection": "close"})
            outcome = response.status_code
            public_id = response.headers.get("Location", "").rsplit("/", 1)[-1] or None
        except requests.RequestException as exc:
            outcome, public_id = exc.__class__.__name__, None
        with self._lock:
            self.results.append((phase, time.monotonic() - started, outcome, public_id))

    def times(self, phase):
        return [seconds for p, seconds, _, _ in self.results if p == phase]


def signed_in(url, email):
    """A signed-in session's cookies and the send form's CSRF token."""
    browser = servers.Browser(url)
    browser.login(email)
    return browser.session.cookies, browser.token("/transactions/new")


def not_exhausted(*logs):
    for log in logs:
        assert "QueuePool limit" not in log, "the database pool ran out:\n" + log[-3000:]


# -- Redis ----------------------------------------------------------------------------------

REVIEWERS, STREAMS_PER_REVIEWER, STREAMS_PER_REQUESTOR = 10, 4, 5  # 50 watchers
SEND_RATE = 1.5  # a second
PHASES = [("before", None), ("Redis cut", "cut"), ("after the cut", "restore"),
          ("Redis hung", "pause"), ("after the hang", "restore")]
SENDS_PER_PHASE = 3


@pytest.fixture
def redis_proxy():
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    address = urlsplit(REDIS_URL)
    proxy = TcpProxy((address.hostname, address.port or 6379), "redis")
    yield proxy
    proxy.close()


def test_redis_cut_then_hung_fails_no_send_and_every_watcher_misses_nothing(
        tmp_path, served_database, redis_proxy, fake_pagerduty):
    """gunicorn's gevent workers and its dispatcher process reach Redis through the proxy; 50
    watchers on the live stream and 1.5 sends a second while Redis is cut, then hung."""
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=served_database,
                   SECRET_KEY=servers.SECRET_KEY)
    requestors = [create_user(app, "requestor", f"{name}@example.com", passkey=False)
                  for name in ("hana", "otto")]
    for n in range(REVIEWERS):
        create_user(app, "reviewer", f"reviewer{n}@example.com", passkey=False)
    create_user(app, "member", "uma@example.com", notify_pagerduty=True, notify_email=False)
    configure_pagerduty(app)
    env = servers.environment(
        tmp_path, SQLALCHEMY_DATABASE_URI=served_database,
        REDIS_URL=f"redis://{redis_proxy.address}/0",
        REDIS_CHANNEL_PREFIX=f"sendauth-outage-{uuid.uuid4().hex[:8]}",
        PAGERDUTY_EVENTS_URL=fake_pagerduty.url, BASE_URL="http://sendauth.test",
        RATELIMIT_ENABLED="false", SSE_HEARTBEAT_SECONDS=2, DISPATCHER_IDLE_SECONDS=0.5,
        ACCESS_LOG="/dev/null")
    server = servers.gunicorn(env, tmp_path)  # a gevent worker, and its dispatcher process
    watchers, sends = {}, None
    try:
        senders = [signed_in(server.url, r.email) for r in requestors]
        for n in range(REVIEWERS):
            cookies, _ = signed_in(server.url, f"reviewer{n}@example.com")
            for k in range(STREAMS_PER_REVIEWER):
                watchers[f"reviewer{n} #{k}"] = (None, stream(server.url, cookies))
        for requestor, (cookies, _) in zip(requestors, senders, strict=True):
            for k in range(STREAMS_PER_REQUESTOR):
                watchers[f"{requestor.email} #{k}"] = (requestor.id, stream(server.url, cookies))

        sends = SteadySends(server.url, senders, "uma@example.com", SEND_RATE).start()
        for phase, fault in PHASES:
            if fault:
                getattr(redis_proxy, fault)()
            sends.run_phase(phase, SENDS_PER_PHASE)
        sends.stop()

        failed = [(phase, f"{seconds:.1f} s", outcome) for phase, seconds, outcome, _
                  in sends.results if outcome != 302]
        assert not failed, f"{failed} of {len(sends.results)} sends"
        sent = [public_id for _, _, _, public_id in sends.results]
        wait_until(lambda: delivered(app, sent), timeout=60, interval=0.1,
                   message="every send's incident delivered")
        table = visible_events(app)
        began = time.monotonic()
        for name, (requestor_id, watcher) in watchers.items():
            ids = [i for i, owner in table if requestor_id in (None, owner)]
            watcher.read_until(lambda w, ids=ids: len(w.events) >= len(ids), timeout=30)
            assert watcher.ids == ids, f"{name}: in id order, none missed, none twice"
        caught_up = time.monotonic() - began
        assert redis_proxy.connections_made > 0, "the app reached Redis through the proxy"
    finally:
        if sends is not None:
            sends.stop()
        # The server first: it ends every stream at once, and each reader then closes at once
        # (closing one that waits for its next chunk waits for it: a heartbeat each).
        assert server.stop() == 0, server.log()[-3000:]
        for _, watcher in watchers.values():
            watcher.close()
        with app.app_context():
            db.engine.dispose()
    not_exhausted(server.log())
    print(f"\nRedis outage, {len(watchers)} watchers, {SEND_RATE} sends/s: "
          + "; ".join(f"{phase}: {summary(sends.times(phase))}" for phase, _ in PHASES)
          + f"; {len(table)} events, every watcher had all of them {caught_up:.2f} s after "
          "the last delivery")


def stream(url, cookies):
    session = requests.Session()
    session.cookies.update(cookies)
    return HttpStream(session, f"{url}/transactions/stream")


def delivered(app, public_ids):
    with app.app_context():
        statuses = db.session.execute(
            select(Transaction.public_id, Delivery.status).join(Delivery.transaction)).all()
        db.session.remove()
    return {p for p, _ in statuses} == set(public_ids) and {s for _, s in statuses} == {"sent"}


def visible_events(app):
    """Every transaction event's id, with the transaction's requestor, in id order."""
    with app.app_context():
        rows = db.session.execute(select(Event.id, Transaction.requestor_id)
                                  .join(Event.transaction).order_by(Event.id)).all()
        db.session.remove()
    return [tuple(row) for row in rows]


# -- PostgreSQL -----------------------------------------------------------------------------

IN_FLIGHT = 3  # requests whose SMS and Slack messages are at the providers when it is cut
OUTAGE_SECONDS = 2


@pytest.fixture
def postgres_proxy(served_database):
    """The test's database through a proxy: (the proxied URL, the proxy)."""
    url = make_url(served_database)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432), "postgresql")
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.close()


def test_postgresql_cut_with_messages_in_flight_sends_each_once_and_records_it(
        tmp_path, served_database, postgres_proxy, fake_twilio, fake_slack):
    """gunicorn (its gevent worker running the dispatcher thread, as without Redis) reaches
    PostgreSQL through the proxy. SMS and Slack messages are at the providers when the
    database is cut; the providers accept them meanwhile. Each arrives once, and is recorded
    as sent once the database is back (it used to be sent again when the lease ran out)."""
    proxied, proxy = postgres_proxy
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=served_database,
                   SECRET_KEY=servers.SECRET_KEY)
    create_user(app, "requestor", "hana@example.com", passkey=False)
    create_user(app, "member", "uma@example.com", notify_email=False, notify_sms=True,
                phone="+14155550123", notify_slack=True, slack_member_id="U024BE7LH")
    configure_sms(app)
    configure_slack(app)
    fakes = (fake_twilio, fake_slack)
    for fake in fakes:  # held until the database is cut
        fake.answer_always(Answer.slow(60))
    env = servers.environment(
        tmp_path, SQLALCHEMY_DATABASE_URI=proxied, TWILIO_API_URL=fake_twilio.base_url,
        SLACK_API_URL=fake_slack.url, BASE_URL="http://sendauth.test", DISPATCHER="thread",
        DISPATCHER_IDLE_SECONDS=0.5, RATELIMIT_ENABLED="false", ACCESS_LOG="/dev/null")
    server = servers.gunicorn(env, tmp_path)
    try:
        cookies, token = signed_in(server.url, "hana@example.com")
        send = Sender(server.url, cookies, token)
        before = [send("before") for _ in range(IN_FLIGHT)]
        for fake in fakes:
            fake.wait_for(lambda f: f.arrived >= IN_FLIGHT, timeout=30)
        proxy.cut()
        cut_at = time.monotonic()
        refused = send("during", expect=503)
        page = requests.get(f"{server.url}/transactions/", cookies=cookies, timeout=30)
        health = requests.get(f"{server.url}/healthz", timeout=30)
        for fake in fakes:  # the providers accept them while the database is away
            fake.answer_normally()
            fake.wait_for(lambda f: len(f.received) >= IN_FLIGHT, timeout=30)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))  # the outage
        proxy.restore()
        restored = time.monotonic()
        accepted_at = [r.at for fake in fakes for r in fake.received]
        wait_until(lambda: delivered(app, before), timeout=60, interval=0.1,
                   message="every in-flight message recorded as sent")
        recorded_in = time.monotonic() - restored
        after = [send("after") for _ in range(2)]
        wait_until(lambda: delivered(app, before + after), timeout=60, interval=0.1,
                   message="every message recorded as sent")
    finally:
        assert server.stop() == 0, server.log()[-3000:]
        for fake in fakes:
            fake.answer_normally()
    assert max(accepted_at) < restored, "the providers accepted them during the outage"
    assert refused is None, "no transaction while the database is away"
    assert page.status_code == 503 and health.status_code == 503
    assert "<title>Service Unavailable" in page.text and "<h1>Service Unavailable</h1>" in \
        page.text and "property object" not in page.text, page.text[:1000]
    assert health.json() == {"status": "unavailable", "database": "not answering"}
    sent = before + after
    twilio = Counter(m["Body"].split("Message: ", 1)[1].split("\n", 1)[0]
                     for m in fake_twilio.messages)
    slack = Counter(message for m in fake_slack.messages
                    for message in [fake_slack.shown(m)] if "Outage" in message)
    assert sorted(twilio.values()) == [1] * len(sent) and len(slack) == len(sent), (twilio, slack)
    assert set(slack.values()) == {1}, slack
    rows = delivery_attempts(app)
    assert rows == {(public_id, channel): (1, "sent") for public_id in sent
                    for channel in ("sms", "slack")}, "each sent once, recorded once"
    not_exhausted(server.log())
    with app.app_context():
        db.engine.dispose()
    print(f"\nPostgreSQL cut for {OUTAGE_SECONDS} s, {2 * IN_FLIGHT} messages in flight: "
          f"sends before: {summary(send.times['before'])}; during (503): "
          f"{summary(send.times['during'])}; after: {summary(send.times['after'])}; "
          f"the in-flight messages recorded {recorded_in:.2f} s after the database was back")


class Sender:
    """Sends a request through the form, timed; returns its public id (None when refused)."""

    def __init__(self, url, cookies, token):
        self.url, self.cookies, self.token = url, cookies, token
        self.times = {}
        self.count = 0

    def __call__(self, phase, expect=302):
        self.count += 1
        started = time.monotonic()
        response = requests.post(f"{self.url}/transactions/new", cookies=self.cookies, data={
            "csrf_token": self.token, "user": "uma@example.com",
            "message": f"Outage {self.count}"}, timeout=30, allow_redirects=False)
        self.times.setdefault(phase, []).append(time.monotonic() - started)
        assert response.status_code == expect, response.text[:1000]
        return response.headers["Location"].rsplit("/", 1)[1] if expect == 302 else None


def delivery_attempts(app):
    with app.app_context():
        rows = db.session.execute(select(Transaction.public_id, Delivery.channel,
                                         Delivery.attempts, Delivery.status)
                                  .join(Delivery.transaction)).all()
        db.session.remove()
    return {(public_id, channel): (attempts, status)
            for public_id, channel, attempts, status in rows}
