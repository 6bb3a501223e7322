"""Live frames written by the fan-out itself (``conduit.Conduit``), as under gunicorn's gevent
worker: here on a real socket pair, the stream driven by a thread as gunicorn's greenlet drives
it (writing what the stream yields as HTTP/1.1 chunks), the events published by the app's own
services. The frames on the wire are read back as a browser would: chunks, then events.

Under gevent nothing runs between a fan-out's writes; here the publishing thread writes only
while the stream's thread waits (``conduit.idle``), which the tests wait for before publishing.
"""
import json
import socket
import threading
import time
import types

import pytest

from sendauth_dashboard.core import event_log
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.live.broker import LocalBroker, RedisBroker
from sendauth_dashboard.services.live.conduit import Conduit
from sendauth_dashboard.services.live.replay import reader
from sendauth_dashboard.services.live.rights import Viewer
from sendauth_dashboard.services.live.slots import StreamsFull, StreamSlots
from sendauth_dashboard.services.live.stream import stream
from sendauth_dashboard.services.live.wire import STREAM_RETRY_MS
from tests.support import servers
from tests.support.config import REDIS_URL, need, redis_available
from tests.support.helpers import send_request, wait_until
from tests.support.sse import EventReader


class Wire(EventReader):
    """A connection: the server's end for the stream and its conduit; the browser's end
    read, only when the test reads (a watcher that is slow to read stays slow), chunk by
    chunk."""

    def __init__(self, small=False):
        self.server, self.browser = socket.socketpair()
        if small:  # a watcher that is slow to read fills these at once
            self.server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            self.browser.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._bytes = b""
        super().__init__(self._next_chunks, name="wire")

    def conduit(self, viewer):
        # gevent's socket waits cooperatively in sendall; the one under it never waits.
        raw = types.SimpleNamespace(
            send=lambda data: self.server.send(data, socket.MSG_DONTWAIT),
            recv=lambda size, flags: self.server.recv(size, flags | socket.MSG_DONTWAIT))
        return Conduit(viewer, self.server, raw, chunked=True)

    def write_chunk(self, text):
        """What gunicorn does with each frame the stream yields."""
        data = text.encode()
        self.server.sendall(b"%X\r\n%b\r\n" % (len(data), data))

    def _next_chunks(self, timeout):
        """The payload of the whole HTTP chunks received so far (maybe none yet)."""
        self.browser.settimeout(timeout)
        received = self.browser.recv(65536)
        if not received:
            return None
        self._bytes += received
        payload = b""
        while True:
            size_line, crlf, rest = self._bytes.partition(b"\r\n")
            if not crlf:
                return payload
            size = int(size_line, 16)  # a frame cut or run together fails here or below
            if len(rest) < size + 2:
                return payload
            assert rest[size:size + 2] == b"\r\n", "a chunk does not end where its size says"
            payload += rest[:size]
            self._bytes = rest[size + 2:]

    def close(self):
        self.server.close()
        self.browser.close()


class Driven:
    """The stream run by a thread of its own, which writes what it yields to the wire."""

    def __init__(self, app, body, wire):
        self.body, self.wire, self.yielded = body, wire, []
        self._thread = threading.Thread(target=self._run, args=(app,), daemon=True)
        self._thread.start()

    def _run(self, app):
        with app.app_context():
            try:
                for frame in self.body:
                    self.yielded.append(frame)
                    self.wire.write_chunk(frame)
            except OSError:
                pass  # the test closed the wire

    def stop(self, broker):
        broker.close_all()
        self._thread.join(15)
        assert not self._thread.is_alive(), "the stream did not end"


def open_stream(app, viewer, wire, broker, heartbeat=60):
    with app.app_context():
        after = event_log.latest_event_id()
    conduit = wire.conduit(viewer)
    body = stream(viewer, after, broker, heartbeat=heartbeat, lifetime=60, conduit=conduit)
    driven = Driven(app, body, wire)
    wait_until(lambda: conduit.idle, timeout=15, message="the stream waits, its conduit idle")
    return conduit, driven


def created(events):
    return [e["transaction"]["id"] for e in events if e["kind"] == "transaction.created"]


def test_the_fan_out_writes_each_event_in_order_to_the_watchers_who_may_see_it(app, stream_people):
    hana, otto, uma = stream_people
    broker = runtime(app).broker
    wires = {name: Wire() for name in ("hana", "reviewer")}
    conduits = {
        "hana": open_stream(app, Viewer(hana.id, sees_all=False), wires["hana"], broker),
        "reviewer": open_stream(app, Viewer(otto.id, sees_all=True), wires["reviewer"],
                                broker),
    }
    hanas, ottos = [], []
    for n in range(6):
        hanas.append(send_request(app, hana, uma, message=f"hana {n}"))
        ottos.append(send_request(app, otto, uma, message=f"otto {n}"))
    everyone = [t for pair in zip(hanas, ottos, strict=True) for t in pair]

    wires["reviewer"].read_until(lambda wire: created(wire.events) == everyone)
    wires["hana"].read_until(lambda wire: created(wire.events) == hanas)
    for wire in wires.values():
        ids = [e["id"] for e in wire.events]
        assert ids == sorted(set(ids)), "each event once, in id order"
    for _, driven in conduits.values():
        # Every event went out through the conduit: the stream itself yielded only its opening.
        assert [f.split("\n")[0] for f in driven.yielded] == [
            f"retry: {STREAM_RETRY_MS}"]
    for _, driven in conduits.values():
        driven.stop(broker)
    for wire in wires.values():
        wire.close()


def test_a_watcher_slow_to_read_gets_every_event_whole_and_in_order(app, stream_people):
    """The socket takes part of a frame: the stream writes the rest, then what was queued
    meanwhile, and the fan-out goes on writing to everyone else."""
    hana, _, uma = stream_people
    broker = runtime(app).broker
    slow, quick = Wire(small=True), Wire()
    viewer = Viewer(hana.id, sees_all=False)
    slow_conduit, slow_stream = open_stream(app, viewer, slow, broker)
    _, quick_stream = open_stream(app, viewer, quick, broker)

    sent = [send_request(app, hana, uma, message=f"request {n} " + "x" * 300) for n in range(40)]

    quick.read_until(lambda wire: created(wire.events) == sent)  # not held back by the slow one
    slow.read_until(lambda wire: created(wire.events) == sent)
    ids = [e["id"] for e in slow.events]
    assert ids == sorted(set(ids)) == [e["id"] for e in quick.events]
    assert len(slow_stream.yielded) > 1, "the slow watcher's socket filled (else: not tested)"
    wait_until(lambda: slow_conduit.idle, timeout=15, message="the slow stream waits again")
    slow_stream.stop(broker)
    quick_stream.stop(broker)
    slow.close()
    quick.close()


def test_events_published_out_of_order_reach_a_conduit_in_id_order(app, stream_people):
    hana, _, uma = stream_people
    broker = runtime(app).broker
    wire = Wire()
    conduit, driven = open_stream(app, Viewer(hana.id, sees_all=False), wire, broker)
    runtime(app).broker = LocalBroker()  # committed now, published below, late
    first, second = (send_request(app, hana, uma, message=f"n{n}") for n in range(2))
    runtime(app).broker = broker
    with app.app_context():
        late = reader(app)(conduit.last_id, event_log.latest_event_id() + 1)
    broker.publish(late[-1])  # a gap: the stream wakes and reads the table
    wire.read_until(lambda wire: created(wire.events) == [first, second])
    # The ones heard late are sent already (published while the stream waits again: under
    # gevent nothing runs between a fan-out's writes, here another thread would).
    wait_until(lambda: conduit.idle, timeout=15, message="the stream waits again")
    for message in reversed(late[:-1]):
        broker.publish(message)
    send_request(app, hana, uma, message="n2")
    wire.read_until(lambda wire: len(created(wire.events)) == 3)
    ids = [e["id"] for e in wire.events]
    assert ids == sorted(set(ids))
    driven.stop(broker)
    wire.close()


def test_a_watcher_who_hangs_up_ends_its_stream_at_the_next_event(app, stream_people):
    hana, _, uma = stream_people
    broker = runtime(app).broker
    wire = Wire()
    conduit, driven = open_stream(app, Viewer(hana.id, sees_all=False), wire, broker)
    wire.browser.close()
    send_request(app, hana, uma)
    wait_until(lambda: broker.subscriber_count == 0, timeout=15,
               message="the stream ended and unsubscribed")
    assert conduit.broken
    driven.stop(broker)
    wire.server.close()


@pytest.mark.redis
def test_the_redis_listener_reads_an_event_it_has_not_heard_from_the_table_once(app, stream_people):
    """A later event heard first: every id below it has settled, so the listener reads the
    missing ones itself and fans out in order, rather than each stream reading on its own."""
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    import redis

    hana, _, uma = stream_people
    broker = RedisBroker(REDIS_URL, prefix=f"sendauth-test-{time.monotonic_ns()}",
                         read_between=reader(app))
    publisher = redis.Redis.from_url(REDIS_URL)
    try:
        subscription = broker.subscribe()
        assert broker.wait_until_listening(15)
        subscription.get(timeout=15)  # RESYNC, as any new subscriber
        for n in range(3):
            send_request(app, hana, uma, message=f"n{n}")  # the app's own broker: not this one
        with app.app_context():
            zero, one, two = reader(app)(0, event_log.latest_event_id() + 1)[-3:]
        for message in (zero, two, one):
            publisher.publish(broker.events_channel, json.dumps(message))
        got = [subscription.get(timeout=15) for _ in range(4)]
        assert [m["id"] for m in got] == [zero["id"], one["id"], two["id"], one["id"]]
        assert got[1] == one  # read from the table, the same as published
    finally:
        broker.stop()
        publisher.close()


def test_a_conduit_tells_when_its_browser_has_hung_up(stream_people):
    hana, _, _ = stream_people
    wire = Wire()
    conduit = wire.conduit(Viewer(hana.id, sees_all=False))
    conduit.idle = True
    assert not conduit.gone()
    wire.browser.close()
    assert conduit.gone() and conduit.broken and not conduit.idle
    wire.server.close()


def test_at_a_persons_cap_the_streams_whose_browser_has_gone_give_their_slots_back():
    slots = StreamSlots()
    hung_up = {"first": False, "second": False}
    for name in hung_up:
        slots.open(7, per_user=2, per_process=100, gone=lambda name=name: hung_up[name])
    slots.open(8, per_user=2, per_process=100)  # someone else's, nothing to ask
    with pytest.raises(StreamsFull):
        slots.open(7, per_user=2, per_process=100)  # both still there: refused
    hung_up["second"] = True  # a reload
    release = slots.open(7, per_user=2, per_process=100)
    assert slots.total == 3
    release()
    release()  # again is nothing
    assert slots.total == 2


def open_stream_socket(url, session):
    """A browser's connection to the stream, as bytes: it can hang up at any moment."""
    host, port = url.rsplit("//", 1)[1].split(":")
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    connection = socket.create_connection((host, int(port)), timeout=15)
    connection.sendall(f"GET /transactions/stream HTTP/1.1\r\nHost: {host}\r\n"
                       f"Cookie: {cookies}\r\nAccept: text/event-stream\r\n\r\n".encode())
    return connection


@pytest.mark.slow
def test_under_gunicorn_reloading_a_page_past_the_cap_keeps_it_live(dashboard):
    """Each reload hangs up one stream and opens another; the heartbeat that would notice is a
    minute away, so only asking the hung-up ones frees their slots."""
    site = dashboard(STREAMS_PER_USER=2, SSE_HEARTBEAT_SECONDS=60)
    server = site.serve()
    try:
        reviewer = servers.Browser(server.url)
        reviewer.login("rita@example.com")
        for _ in range(5):  # five reloads of a page, each stream dropped by the browser
            opened = open_stream_socket(server.url, reviewer.session)
            assert opened.recv(4096).startswith(b"HTTP/1.1 200")
            opened.close()
        kept = [reviewer.watch(), reviewer.watch()]  # two tabs: the cap
        refused = reviewer.session.get(f"{server.url}/transactions/stream", timeout=10,
                                       stream=True)
        assert refused.status_code == 429  # two open tabs really are the cap
        refused.close()
        send_request(site.app, site.requestor, site.member)
        for watcher in kept:  # live; they end with the server (a close would wait for a read)
            watcher.read_until(lambda w: any(e["kind"] == "transaction.created" for e in w.events))
    finally:
        assert server.stop() == 0, server.log()[-2000:]
    # Told to stop, the worker ended its two open streams at once (gunicorn.conf.py) and left
    # by itself, rather than waiting out graceful_timeout for the master to kill it.
    assert "Worker exiting" in server.log()
