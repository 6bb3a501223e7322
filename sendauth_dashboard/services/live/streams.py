"""Live streams: what one watcher's server-sent events carry, from the table and then live."""
import json
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload

from ...core.event_log import latest_event_id
from ...extensions import db
from ...models import Event, Transaction, User
from ...runtime import runtime
from .broker import CLOSE, RESYNC
from .messages import message_for

REPLAY_BATCH = 500


@dataclass(frozen=True)
class Viewer:
    """Who is watching, captured when the stream opens, so deciding visibility needs no database.

    ``still_allowed`` asks whether that is still so (the stream asks on each heartbeat, whenever
    a user event goes by, and before reading the table); ``session_version`` None skips the
    check of the sign-in itself.
    """

    user_id: int
    sees_all: bool
    session_version: int | None = None

    @classmethod
    def of(cls, user):
        return cls(user.id, user.has_role("reviewer"), user.session_version)

    def still_allowed(self, rights=None, after_event=None):
        """True while the viewer is active, signed in, and may see what they saw when the
        stream opened (no more, no less: a changed role ends the stream, and the browser's
        reconnection gets a stream for the new role, or its refusal).

        Asks the database now, or, given the process's ``rights``, takes a reading of theirs
        that is recent and newer than ``after_event`` (a user event) and every other user
        event the process has heard (``Rights``)."""
        standing = (rights.standing(self.user_id, after_event) if rights is not None
                    else read_standing(self.user_id))
        if standing is None:
            return False
        active, requestor, reviewer, session_version = standing
        return (active and requestor and reviewer == self.sees_all
                and self.session_version in (None, session_version))

    def may_see(self, message):
        transaction = message.get("transaction")
        if transaction is None:
            return False
        return self.sees_all or transaction["requestor_id"] == self.user_id


def read_standing(user_id):
    """(active, requestor, reviewer, session version) of a user, from the database; None when
    there is no such user. The session is closed before the stream waits again."""
    try:
        user = db.session.get(User, user_id)
        if user is None:
            return None
        return (user.active, user.has_role("requestor"), user.has_role("reviewer"),
                user.session_version)
    finally:
        db.session.remove()


class Rights:
    """What each watching user may do, as this process last read it, shared by their streams.

    Each stream asked the database itself on every heartbeat, and all of them at once on every
    user event: at 5,000 watchers a query 333 times a second, most of the worker's CPU, and
    5,000 queries in a row when an admin changes anyone's role (bench/fanout.py). Streams of the
    same person now share a reading that is younger than ``max_age`` and was begun after the
    newest user event any stream of this process has seen: the first stream to see a user
    event reads again, the others take that reading. No stream acts on a reading older than a
    change it has heard of; a change with no event (none is made without one) shows within a
    heartbeat and ``max_age``.
    """

    def __init__(self, max_age=1.0, clock=time.monotonic):
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._heard = 0  # the newest user event a stream of this process has seen
        self._readings = {}  # user id -> _Reading, the newest done
        self._reading_now = {}  # user id -> _Reading under way (the others wait for it)

    def standing(self, user_id, after_event=None):
        with self._lock:
            if after_event is not None and after_event > self._heard:
                self._heard = after_event
            heard, now = self._heard, self._clock()
            done = self._readings.get(user_id)
            if done is not None and done.heard >= heard and now - done.began < self.max_age:
                return done.standing
            reading = self._reading_now.get(user_id)
            mine = reading is None or reading.heard < heard
            if mine:
                reading = self._reading_now[user_id] = _Reading(heard, now)
        if not mine:
            # One query for all of this person's streams, also where a query lets the others
            # run meanwhile (gevent, PostgreSQL): they wait for it rather than ask too.
            if reading.finished.wait(30) and reading.standing is not _UNREAD:
                return reading.standing
            return read_standing(user_id)
        try:
            reading.standing = read_standing(user_id)
        finally:
            with self._lock:
                if self._reading_now.get(user_id) is reading:
                    del self._reading_now[user_id]
                done = self._readings.get(user_id)
                if reading.standing is not _UNREAD and (
                        done is None or (done.heard, done.began) <= (heard, now)):
                    self._readings[user_id] = reading
            reading.finished.set()
        return reading.standing


_UNREAD = object()


class _Reading:
    __slots__ = ("heard", "began", "standing", "finished")

    def __init__(self, heard, began):
        self.heard, self.began = heard, began
        self.standing = _UNREAD
        self.finished = threading.Event()


def rights_of(app=None):
    return runtime(app).viewer_rights


class StreamsFull(Exception):
    """No stream can open now; the message says why and when to try again."""


class StreamSlots:
    """How many live streams are open in this process, in all and per user.

    Past a user's cap, the new stream is refused (429) rather than the oldest ended: ending the
    oldest would make that tab's browser reconnect and end the next oldest, tabs taking turns
    for ever; a refused one simply is not live (the page works, reload for live updates). Past
    the process's cap everyone's new streams are refused, so connections remain for the other
    pages (sign-in, /healthz) whatever the streams do.

    A stream whose browser has gone (a reload, a closed tab) keeps its slot until it next
    writes, up to a heartbeat: a person who reloaded a page a few times in a row was refused.
    So at the cap, before refusing, the person's streams that can tell (``gone``, a
    ``Line.gone``) are asked whether their browser has hung up, and those give their slots back.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._streams = {}  # user id -> set of _Slot
        self._total = 0

    def open(self, user_id, *, per_user, per_process, gone=None):
        """A slot for one stream (release it with ``release()``); StreamsFull when none.
        ``gone()``: True once the stream's browser has hung up."""
        with self._lock:
            full = len(self._streams.get(user_id, ())) >= per_user
            theirs = tuple(self._streams.get(user_id, ())) if full else ()
        for slot in theirs:
            if slot.gone is not None and slot.gone():
                slot.release()
        with self._lock:
            if self._total >= per_process:
                raise StreamsFull(
                    "Too many live streams are open on this server; this page is not live. "
                    "Reload it in a minute.")
            mine = self._streams.setdefault(user_id, set())
            if len(mine) >= per_user:
                raise StreamsFull(
                    f"You have {per_user} live pages open already, the most allowed; close one "
                    "and reload this page to see changes live.")
            slot = _Slot(self, user_id, gone)
            mine.add(slot)
            self._total += 1
        return slot.release

    def _release(self, slot):
        with self._lock:
            mine = self._streams.get(slot.user_id)
            if mine is None or slot not in mine:
                return
            mine.discard(slot)
            if not mine:
                del self._streams[slot.user_id]
            self._total -= 1

    @property
    def total(self):
        return self._total


class _Slot:
    __slots__ = ("_slots", "user_id", "gone")

    def __init__(self, slots, user_id, gone):
        self._slots, self.user_id, self.gone = slots, user_id, gone

    def release(self):
        """Give the slot back (once; again is nothing)."""
        self._slots._release(self)


def slots_of(app=None):
    return runtime(app).stream_slots


def replay(viewer, after_id, limit=REPLAY_BATCH):
    """Transaction events newer than ``after_id`` that the viewer may see, oldest first."""
    query = (
        select(Event)
        .join(Transaction, Event.transaction_id == Transaction.id)
        .options(contains_eager(Event.transaction), joinedload(Event.actor))
        .where(Event.id > after_id)
        .order_by(Event.id)
        .limit(limit)
    )
    if not viewer.sees_all:
        query = query.where(Transaction.requestor_id == viewer.user_id)
    return [message_for(event) for event in db.session.scalars(query).unique()]


def sse_format(message):
    return f"id: {message['id']}\ndata: {json.dumps(message, separators=(',', ':'))}\n\n"


class SharedFormat:
    """``sse_format`` for live messages, once per message object rather than once per watcher.

    The broker hands the same message object to every watcher of a process, and serialising it
    for each of them was a large part of a fan-out's cost (bench/fanout.py). The last few
    (message, text) pairs are kept; holding the messages means an object's id cannot be reused
    while its text is cached. An equal message that is another object (a replay read from the
    table) is formatted afresh.
    """

    def __init__(self, size=8):
        self.size = size
        self._recent = ()  # replaced, never changed in place: safe to read from any thread

    def __call__(self, message):
        return self._entry(message)[1]

    def wire(self, message, chunked):
        """The frame as bytes on the wire: in an HTTP/1.1 chunk when ``chunked``."""
        entry = self._entry(message)
        return entry[3] if chunked else entry[2]

    def _entry(self, message):
        for entry in self._recent:
            if entry[0] is message:
                return entry
        text = sse_format(message)
        data = text.encode()
        entry = (message, text, data, b"%X\r\n%b\r\n" % (len(data), data))
        self._recent = (entry,) + self._recent[:self.size - 1]
        return entry


_live_format = SharedFormat()


class Line:
    """A watcher's socket, which the fan-out writes live frames to itself while the stream waits.

    Waking a stream's greenlet to format and write each event cost 45-65 us per watcher and
    event; one loop writing the same bytes to every socket costs about a fifth of that
    (bench/fanout.py). So while the stream waits with nothing queued it marks its line
    ``idle`` with the id it is at, and the fan-out (``take``) writes the next message in order
    straight to the socket, without blocking, and advances the id. Anything else (a gap, a user
    event that may change rights, a socket that takes only part of a frame) goes to the
    stream's queue as before, and the stream, awake, writes the rest of a partial frame first.

    Only under gunicorn's gevent worker (``line_for``): every greenlet of the process runs in
    one thread, so nothing writes to the socket between the stream's own writes (gunicorn's,
    when it yields) and the fan-out's (while it is idle). The frames are chunked as gunicorn
    chunks the rest of the response.
    """

    __slots__ = ("viewer", "idle", "last_id", "pending", "broken", "_sock", "_raw", "_chunked")

    def __init__(self, viewer, sock, raw, chunked):
        self.viewer = viewer
        self.idle = False
        self.last_id = 0
        self.pending = b""
        self.broken = False
        self._sock = sock  # gevent's socket: writes that wait cooperatively
        self._raw = raw  # the non-blocking socket under it: writes that never wait
        self._chunked = chunked

    def take(self, message, after=None):
        """Write ``message`` now if it is the stream's next; False: queue it for the stream.

        ``after``: the id fanned out before this one, every id between them known not to exist.
        """
        if not self.idle or not isinstance(message, dict):
            return False
        if str(message.get("kind", "")).startswith("user."):
            return False  # the stream checks the viewer's rights
        event_id = message["id"]
        if event_id <= self.last_id:
            return True  # sent already, or not theirs
        if event_id != self.last_id + 1 and after != self.last_id:
            return False  # the stream catches up from the table
        self.last_id = event_id
        if not self.viewer.may_see(message):
            return True
        data = _live_format.wire(message, self._chunked)
        try:
            sent = self._raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.broken = True
            self.idle = False
            return False  # wakes the stream, which ends
        if sent < len(data):
            self.pending = data[sent:]
            self.idle = False
            return False  # wakes the stream, which writes the rest first
        return True

    def gone(self):
        """True once the browser has hung up (its end of the connection closed, read without
        waiting); the stream then ends at its next wake, its slot given back by the caller."""
        if not self.broken:
            try:
                self.broken = self._raw.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                pass  # nothing to read: still there
            except OSError:
                self.broken = True
        if self.broken:
            self.idle = False  # the next event wakes the stream, which ends
        return self.broken

    def flush(self):
        """Write what the socket did not take (waiting for it, as any write of the stream's
        does); False when the socket is broken."""
        if self.pending and not self.broken:
            try:
                self._sock.sendall(self.pending)
            except OSError:
                self.broken = True
            self.pending = b""
        return not self.broken


def line_for(environ, viewer):
    """A Line for this request's stream under gunicorn's gevent worker speaking HTTP/1.1 to a
    plain socket; None elsewhere (Werkzeug's server, TLS, HTTP/1.0, the tests' client), where
    the stream writes every frame itself."""
    sock = environ.get("gunicorn.socket")
    if sock is None or environ.get("SERVER_PROTOCOL") != "HTTP/1.1" \
            or environ.get("REQUEST_METHOD") != "GET":
        return None
    gevent_socket = sys.modules.get("gevent.socket")
    if gevent_socket is None or type(sock) is not gevent_socket.socket:
        return None  # not gevent's plain socket (TLS wraps it in another class)
    raw = getattr(sock, "_sock", None)
    if raw is None:
        return None
    return Line(viewer, sock, raw, chunked=True)


def reader(app):
    """``read_between(after_id, before_id)`` for the broker: the messages of every event between
    two ids, of every kind, oldest first (the broker fills gaps in what it heard with them)."""
    def read_between(after_id, before_id):
        with app.app_context():
            try:
                query = (select(Event)
                         .options(joinedload(Event.transaction), joinedload(Event.actor))
                         .where(Event.id > after_id, Event.id < before_id)
                         .order_by(Event.id))
                return [message_for(event) for event in db.session.scalars(query).unique()]
            finally:
                db.session.remove()
    return read_between


# A stream ends somewhere between this share of SSE_MAX_SECONDS and all of it.
LIFETIME_SPREAD = 0.25


def lifetime(max_seconds, rng=random):
    """How long one stream stays open before the browser reconnects: spread out, so the
    watchers who connected together (after a restart, say) do not all reconnect together
    again every few minutes, each costing a session load and a replay query at once."""
    return max_seconds * rng.uniform(1 - LIFETIME_SPREAD, 1)


def stream(viewer, after_id, broker, *, heartbeat, lifetime, clock=time.monotonic, line=None):
    """Server-sent events for one watcher: replay what they missed, then live, then end.

    Ids reach the watcher in increasing order, none skipped. Event ids commit in the order
    they were given (``record``), but processes publish after their commits in whatever order
    they get to it: a live message that is not the next id makes the stream catch up from the
    table instead. A message at or below the last id seen is already sent (or not the
    watcher's). It subscribes before reading the table, so an event committed in between
    arrives either way. It holds no database connection while it waits. A full queue (a slow
    watcher) makes it catch up from the table instead of dropping events. With a ``line``
    (``line_for``), the fan-out writes live messages in order itself while the stream waits.
    """
    subscription = broker.subscribe()
    subscription.line = line
    rights = rights_of()
    try:
        yield f"retry: {STREAM_RETRY_MS}\n: stream open\n\n"
        last_id = yield from _catch_up(viewer, after_id)
        deadline = clock() + lifetime
        while (remaining := deadline - clock()) > 0:
            if line is not None and subscription.empty:
                line.last_id, line.idle = last_id, True
            message = subscription.get(timeout=min(heartbeat, remaining))
            if line is not None:
                # Only an idle line is written to, so only now can a frame be left half sent.
                line.idle = False
                last_id = max(last_id, line.last_id)
                if not line.flush():
                    return
            if message is CLOSE:
                return
            # Rights may have changed: on a heartbeat, a user event, or before reading the
            # table (which has only transaction events: a user event may be among the gap).
            if message is None:
                if not viewer.still_allowed(rights):
                    return
            elif isinstance(message, dict) and str(message.get("kind", "")).startswith("user."):
                if not viewer.still_allowed(rights, after_event=message["id"]):
                    return
            elif (not isinstance(message, dict) or message["id"] > last_id + 1
                    or subscription.overflowed) and not viewer.still_allowed():
                return
            if message is RESYNC or subscription.overflowed:
                subscription.overflowed = False
                subscription.drain()
                last_id = yield from _catch_up(viewer, last_id)
                continue
            if message is None:
                yield ": keepalive\n\n"
                continue
            if message["id"] <= last_id:
                continue
            if message["id"] != last_id + 1:
                # Every id below this one has committed or rolled back (a rolled-back id is a
                # gap for good on PostgreSQL): the table has all there is to send before it.
                last_id = max(message["id"], (yield from _catch_up(viewer, last_id)))
                continue
            last_id = message["id"]
            if viewer.may_see(message):
                yield _live_format(message)
    finally:
        if line is not None:
            line.idle = False
        broker.unsubscribe(subscription)


STREAM_RETRY_MS = 2000


def _catch_up(viewer, after_id):
    """Replay from the table in batches, yielding frames; returns the id the stream is now
    at. The session is closed before the stream waits again."""
    try:
        # Read before the rows: every id up to it has settled, so the replay has them all.
        now_at = latest_event_id()
        while batch := replay(viewer, after_id):
            for message in batch:
                after_id = message["id"]
                now_at = max(now_at, after_id)
                yield sse_format(message)
            if len(batch) < REPLAY_BATCH:
                break
        return now_at
    finally:
        db.session.remove()
