"""The stream: one watcher's server-sent events, replayed from the table, then live, then
ended after its lifetime so the browser reconnects."""
import random
import time

from .broker import CLOSE, RESYNC
from .replay import catch_up
from .rights import rights_of
from .wire import KEEPALIVE, goodbye, live_frames, opening

# A stream ends somewhere between this share of SSE_MAX_SECONDS and all of it.
LIFETIME_SPREAD = 0.25


def lifetime(max_seconds, rng=random):
    """How long one stream stays open before the browser reconnects: spread out, so the
    watchers who connected together (after a restart, say) do not all reconnect together
    again every few minutes, each costing a session load and a replay query at once."""
    return max_seconds * rng.uniform(1 - LIFETIME_SPREAD, 1)


def stream(viewer, after_id, broker, *, heartbeat, lifetime, clock=time.monotonic,
           conduit=None):
    """Server-sent events for one watcher: replay what they missed, then live, then end.

    Ids reach the watcher in increasing order, none skipped. Event ids commit in the order
    they were given (``record``), but processes publish after their commits in whatever order
    they get to it: a live message that is not the next id makes the stream catch up from the
    table instead. A message at or below the last id seen is already sent (or not the
    watcher's). It subscribes before reading the table, so an event committed in between
    arrives either way. It holds no database connection while it waits. A full queue (a slow
    watcher) makes it catch up (``replay.catch_up``: the recent events, or the table) instead
    of dropping events. At shutdown its last frame says when to come back. With a ``conduit``
    (``conduit_for``), the fan-out writes live messages in order itself while the stream waits.
    """
    subscription = broker.subscribe()
    subscription.conduit = conduit
    rights = rights_of()
    try:
        last_id = yield from _together(opening(), catch_up(viewer, after_id, broker.recent,
                                                           rights, opening=True))
        if last_id is None:
            return
        deadline = clock() + lifetime
        while (remaining := deadline - clock()) > 0:
            if conduit is not None and subscription.empty:
                conduit.last_id, conduit.idle = last_id, True
            message = subscription.get(timeout=min(heartbeat, remaining))
            if conduit is not None:
                # Only an idle conduit is written to, so only now can a frame be left half sent.
                conduit.idle = False
                last_id = max(last_id, conduit.last_id)
                if not conduit.flush():
                    return
            if message is CLOSE:
                yield goodbye()
                return
            if not _still_allowed(viewer, rights, message):
                return
            if message is RESYNC or subscription.overflowed:
                subscription.overflowed = False
                subscription.drain()
                last_id = yield from catch_up(viewer, last_id, broker.recent, rights)
            elif message is None:
                yield KEEPALIVE
            elif message["id"] == last_id + 1:
                last_id = message["id"]
                if viewer.may_see(message):
                    yield live_frames(message)
            elif message["id"] > last_id:
                # Every id below this one has committed or rolled back (a rolled-back id is a
                # gap for good on PostgreSQL): the table has all there is to send before it.
                caught_up = yield from catch_up(viewer, last_id, broker.recent, rights)
                last_id = None if caught_up is None else max(message["id"], caught_up)
            if last_id is None:
                return
    finally:
        if conduit is not None:
            conduit.idle = False
        broker.unsubscribe(subscription)


# At most this many characters of catch-up go out in one write.
TOGETHER_CHARS = 64 * 1024


def _together(first, frames, limit=TOGETHER_CHARS):
    """``first`` and then ``frames`` (a generator), yielded as few texts of about ``limit``
    characters each rather than a write each; returns what ``frames`` returns. A stream's
    opening frame and its catch-up are then one write: after a restart, each stream's three
    or four writes (a system call and a chunk each) were a fifth of its opening's cost."""
    parts, size = [first], len(first)
    try:
        while True:
            frame = next(frames)
            parts.append(frame)
            size += len(frame)
            if size >= limit:
                yield "".join(parts)
                parts, size = [], 0
    except StopIteration as end:
        if parts:
            yield "".join(parts)
        return end.value


def _still_allowed(viewer, rights, message):
    """Whether the viewer may still watch, asked when rights may have changed: on a heartbeat
    (``message`` None) and on a user event (and by ``catch_up`` before it fills in what may
    hold one)."""
    if message is None:
        return viewer.still_allowed(rights)
    if isinstance(message, dict) and str(message.get("kind", "")).startswith("user."):
        return viewer.still_allowed(rights, after_event=message["id"])
    return True
