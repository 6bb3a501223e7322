"""Several processes share events through Redis; Redis going away loses nothing."""
import shutil
import socket
import subprocess
import threading
import uuid

import pytest

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.live.broker import DELIVERIES, RESYNC, WEBHOOKS, RedisBroker
from tests.support.accounts import create_user
from tests.support.config import REDIS_URL, base_test_config, need, redis_available
from tests.support.helpers import configure_pagerduty, send_request, wait_until
from tests.support.sse import ClientStream
from tests.support.web import AuthActions

pytestmark = pytest.mark.redis


@pytest.fixture
def prefix():
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    return f"sendauth-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def brokers(prefix):
    made = []

    def make(url=REDIS_URL):
        broker = RedisBroker(url, prefix=prefix, retry_seconds=(0.05, 0.2))
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


def test_an_event_published_in_one_process_reaches_watchers_in_another(brokers):
    a, b = brokers(), brokers()
    subscription = b.subscribe()
    assert b.wait_until_listening(15)
    assert subscription.get(timeout=15) is RESYNC  # a fresh subscriber first catches up
    a.publish({"id": 7, "kind": "transaction.created"})
    assert subscription.get(timeout=15) == {"id": 7, "kind": "transaction.created"}


def test_one_redis_subscriber_per_process_whatever_the_number_of_watchers(brokers, prefix):
    import redis

    broker = brokers()
    for _ in range(50):
        broker.subscribe()
    assert broker.wait_until_listening(15)
    numsub = dict(redis.Redis.from_url(REDIS_URL).pubsub_numsub(f"{prefix}:events"))
    assert numsub[f"{prefix}:events".encode()] == 1


def test_a_wake_up_reaches_dispatchers_in_other_processes(brokers):
    web, worker = brokers(), brokers()
    woken = threading.Event()
    worker.on_wake(woken.set)
    assert worker.wait_until_listening(15)
    woken.clear()
    web.publish_wake()
    assert woken.wait(15)


def test_a_wake_up_wakes_the_loop_whose_work_it_is(brokers):
    """A worker's dispatcher woke for every webhook queued and its webhook sender for every
    delivery, each to look and find nothing: CPU the worker lacked at 20 answers a second."""
    web, worker = brokers(), brokers()
    woken = {kind: threading.Event() for kind in (DELIVERIES, WEBHOOKS, None)}
    for kind, event in woken.items():
        worker.on_wake(event.set, kind=kind)
    assert worker.wait_until_listening(15)
    # Once subscribed, the listener wakes every loop once (whatever was queued while it was
    # away), just after it says it is listening: that wake-up is not the one under test.
    assert woken[None].wait(15)  # the last callback registered, so the others have been
    for kind in (WEBHOOKS, DELIVERIES):
        for event in woken.values():
            event.clear()
        web.publish_wake(kind)
        assert woken[None].wait(15)  # wake-ups arrive in order: the one before was heard
        assert woken[kind].is_set()
        assert not woken[DELIVERIES if kind == WEBHOOKS else WEBHOOKS].is_set()


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own, so it can be stopped and started again."""
    need(shutil.which("redis-server") is not None, "no redis-server binary")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = RedisServer(port, tmp_path)
    server.start()
    yield server
    server.stop()


class RedisServer:
    def __init__(self, port, directory):
        self.port, self.directory, self.process = port, directory, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: redis_available(self.url), timeout=10, message="redis-server up")

    def stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def test_when_redis_goes_away_streams_stay_up_and_miss_nothing(tmp_path, own_redis, prefix):
    """Two app processes share the database and Redis; Redis dies and comes back."""
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    config = dict(SQLALCHEMY_DATABASE_URI=database, REDIS_URL=own_redis.url,
                  REDIS_CHANNEL_PREFIX=prefix, SSE_HEARTBEAT_SECONDS=0.05, SSE_MAX_SECONDS=30)
    sender = create_app(base_test_config(tmp_path, **config))
    watcher = create_app(base_test_config(tmp_path, **config))
    with sender.app_context():
        db.create_all()
    configure_pagerduty(sender)
    hana = create_user(sender, "requestor", "hana@example.com")
    uma = create_user(sender, "member", "uma@example.com", notify_pagerduty=True)

    client = watcher.test_client()
    AuthActions(client).login(hana)
    stream = ClientStream(client, "/transactions/stream?after=0")
    watcher_broker = runtime(watcher).broker
    assert watcher_broker.wait_until_listening(15)
    first = send_request(sender, hana, uma)
    stream.read_until(lambda s: len(s.events) == 1)

    own_redis.stop()
    wait_until(lambda: not watcher_broker.listening, message="the subscriber notices")
    during = [send_request(sender, hana, uma) for _ in range(3)]  # Redis is down meanwhile
    own_redis.start()
    stream.read_until(lambda s: len(s.events) == 4, timeout=15)
    assert [e["transaction"]["id"] for e in stream.events] == [first, *during]
    assert not stream.ended, "the stream stayed open throughout"
    stream.close()
    for app in (sender, watcher):
        runtime(app).broker.stop()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def silent_redis():
    """A Redis that hangs: it takes connections and never answers (not refusing, just
    silent)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_hung_redis_costs_one_short_timeout_not_every_send_its_five_seconds(silent_redis):
    import time

    broker = RedisBroker(silent_redis, prefix="sendauth-test-hung")
    watcher = super(RedisBroker, broker).subscribe()  # a local watcher, no listener thread
    took = []
    for n in range(1, 6):
        started = time.monotonic()
        broker.publish({"id": n, "kind": "transaction.created"})
        broker.publish_wake()
        took.append(time.monotonic() - started)
    assert took[0] < 1.5, f"the first publish and wake took {took[0]:.2f} s"
    assert sum(took[1:]) < 0.1, f"the next four took {sum(took[1:]):.2f} s in all"
    assert [watcher.get(timeout=1)["id"] for _ in range(5)] == [1, 2, 3, 4, 5], \
        "this process's watchers still get every event, at once"
    broker.stop()


def test_with_redis_away_local_events_reach_watchers_in_order_read_once_for_the_process():
    """Redis down: what this process publishes reaches its watchers at once, and the events
    other processes committed in between are read from the table once for the process, not
    by each of the streams on its own (which emptied the database pool)."""
    from tests.support.servers import free_port

    reads = []

    def read_between(after_id, before_id):
        reads.append((after_id, before_id))
        return [{"id": n, "kind": "transaction.created"} for n in range(after_id + 1, before_id)]

    broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0", prefix="sendauth-test-away",
                         read_between=read_between)
    watchers = [super(RedisBroker, broker).subscribe() for _ in range(50)]
    broker.publish({"id": 1, "kind": "transaction.created"})
    broker.publish({"id": 5, "kind": "transaction.created"})  # 2 to 4: other processes'
    for watcher in watchers:
        assert [watcher.get(timeout=1)["id"] for _ in range(5)] == [1, 2, 3, 4, 5]
    assert reads == [(1, 5)], "one read for the process"
    broker.stop()


def test_what_a_process_published_while_redis_hung_reaches_the_others_once_it_answers(
        prefix, monkeypatch):
    """A process (the dispatcher, say) finds Redis hung, delivers locally for a while, and
    publishes its next event there after Redis has come back, then nothing more happens: the
    other processes' watchers still get it (they used to wait for some later event)."""
    from urllib.parse import urlsplit

    from sendauth_dashboard.services.live import broker as broker_module
    from tests.support.proxy import TcpProxy

    monkeypatch.setattr(broker_module, "PUBLISH_PAUSE_SECONDS", 1.0)
    address = urlsplit(REDIS_URL)
    proxy = TcpProxy((address.hostname, address.port or 6379), "redis")
    url = f"redis://{proxy.address}/0"
    table = {n: {"id": n, "kind": "transaction.created"} for n in range(1, 4)}
    dispatcher = RedisBroker(url, prefix=prefix, retry_seconds=(0.05, 0.2))
    web = RedisBroker(url, prefix=prefix, retry_seconds=(0.05, 0.2),
                      read_between=lambda a, b: [table[n] for n in range(a + 1, b)])
    try:
        watcher = web.subscribe()
        dispatcher.on_wake(lambda: None)  # its listener, as a dispatcher has
        assert web.wait_until_listening(15) and dispatcher.wait_until_listening(15)
        assert watcher.get(timeout=15) is RESYNC
        dispatcher.publish(table[1])
        assert watcher.get(timeout=15) == table[1]
        proxy.pause()
        dispatcher.publish(table[2])  # times out: local only for a while
        proxy.restore()
        dispatcher.publish(table[3])  # still local only; and then nothing more happens
        got = []
        wait_until(lambda: got.append(watcher.get(timeout=0.1)) or 3 in
                   [m["id"] for m in got if isinstance(m, dict)], timeout=10,
                   message="event 3 reaching the other process")
        ids = [m["id"] for m in got if isinstance(m, dict)]
        assert sorted(set(ids)) == [2, 3], got
    finally:
        for broker in (dispatcher, web):
            broker.stop()
        proxy.close()
