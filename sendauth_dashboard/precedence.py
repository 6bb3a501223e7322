"""What goes first in a web worker when every browser reconnects at once (issue 26).

After a restart, a deploy or a network blip, thousands of live streams open again within a
second or two, and a gevent worker runs whatever is ready in the order it became ready: a
send made then waited behind every stream opening ready before it, and again behind the ones
ready by then each time it waited for its database (bench/storm.py: 0.6 s on SQLite, 1.2 s on
PostgreSQL, 28 waits). So, while streams are opening:

- each opening waits for its turn (``openings``, a ``Lane``): one at a time, each handed its
  turn through the loop's queue of what is ready, so a page's request or a send's next step
  ready by then runs first; the cyclic garbage collector waits meanwhile;
- the database waits of everything else do not give the loop away for as long as a query on
  a nearby database takes (``install``, under gevent, PostgreSQL's driver): a send's 26
  round trips no longer queue behind the openings' work each time.

With nothing opening, both are as before: an opening with no one waiting for a turn yields
once, and queries wait through gevent.
"""
import gc
import threading
import time
from collections import deque

# The longest the cyclic garbage collector waits while streams open (``Lane``).
COLLECTOR_PAUSE_SECONDS = 30.0

# How long a query's wait keeps the loop, while streams are opening, before it lets the
# openings run after all: a round trip to a database on the same machine or network takes a
# fraction of it; a slow query gives the loop away as any other wait does.
HOLD_SECONDS = 0.002


class Lane:
    """Stream openings one at a time, each after whatever else is ready to run by then.

    Under gevent the turn passes through the loop's queue (``threading.Event`` is gevent's
    there: setting it wakes its waiter from that queue). With threads (Werkzeug's server) the
    turns only take openings one at a time. A turn that does not come within ``patience``
    seconds (an opening stuck on a database that does not answer) is not waited for any
    longer.

    ``pause_collector``: while openings wait, the cyclic garbage collector does too (for
    ``COLLECTOR_PAUSE_SECONDS`` at most). Each stream opened adds objects that live as long
    as it does, and each time the heap has grown by a quarter the collector walks all of it:
    four full collections, 140-360 ms of a 2.5 s storm at 5,000 streams (bench/storm.py,
    timed with gc.callbacks), finding next to nothing (reference counting frees what a
    request leaves)."""

    def __init__(self, patience=10.0, pause_collector=False):
        self.patience = patience
        self.pause_collector = pause_collector
        self._lock = threading.Lock()
        self._waiting = deque()  # the threading.Event of each opening waiting for its turn
        self._held = False
        self._collector_paused_at = None

    @property
    def crowded(self):
        """True while openings wait for a turn: others' waits should not give the loop away."""
        return bool(self._waiting)

    def turn(self):
        return _Turn(self)

    def _take(self):
        """True once this opening holds the turn; False when it stopped waiting for it."""
        with self._lock:
            first = not self._held
            self._held = True
            if not first:
                handed = threading.Event()
                self._waiting.append(handed)
                if self.pause_collector and self._collector_paused_at is None and gc.isenabled():
                    gc.disable()
                    self._collector_paused_at = time.monotonic()
        if first:
            time.sleep(0)  # under gevent: after whatever is ready now
            return True
        if handed.wait(self.patience):
            return True
        with self._lock:
            if handed in self._waiting:
                self._waiting.remove(handed)
                self._resume_collector_when_due()  # the turn's holder may never give it back
                return False
        return True  # handed the turn as the wait ended

    def _give_back(self):
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()  # the turn passes on: _held stays True
            else:
                self._held = False
            self._resume_collector_when_due()

    def _resume_collector_when_due(self):
        """(Holding the lock.) The collector back on once no opening waits, or after
        COLLECTOR_PAUSE_SECONDS."""
        paused_at = self._collector_paused_at
        if paused_at is not None and (
                not self._waiting or time.monotonic() - paused_at > COLLECTOR_PAUSE_SECONDS):
            self._collector_paused_at = None
            gc.enable()


class _Turn:
    __slots__ = ("lane", "held")

    def __init__(self, lane):
        self.lane = lane
        self.held = False

    def __enter__(self):
        self.held = self.lane._take()
        return self

    def __exit__(self, *exc):
        if self.held:
            self.lane._give_back()


# The process's stream openings (pages.transactions.stream.StreamOpenings).
openings = Lane(pause_collector=True)


def install(crowded=lambda: openings.crowded, hold=HOLD_SECONDS):
    """Under gevent's monkey-patching: PostgreSQL's driver (psycopg) waits for its socket
    first without giving the loop away, for up to ``hold`` seconds a query, while
    ``crowded()``; then, or at any other time, through gevent as before. Nothing without
    psycopg or gevent."""
    try:
        import psycopg.waiting
        from gevent import monkey
    except ImportError:
        return
    waiting = psycopg.waiting
    if getattr(waiting.wait, "holds_while_crowded", False):
        return
    poll, pollin, pollout = monkey.get_original("select", ["poll", "POLLIN", "POLLOUT"])
    masks = {waiting.WAIT_R: pollin, waiting.WAIT_W: pollout, waiting.WAIT_RW: pollin | pollout}
    cooperative = waiting.wait

    def wait(gen, fileno, interval=0.0, timeout=None):
        if not crowded():
            return cooperative(gen, fileno, interval, timeout)
        try:
            until = time.monotonic() + hold
            state = next(gen)
            poller = poll()
            poller.register(fileno, masks[state])
            while (left := until - time.monotonic()) > 0:
                events = poller.poll(max(1, round(left * 1000)))
                if not events:
                    break
                ready = ((waiting.READY_R if events[0][1] & pollin else 0)
                         | (waiting.READY_W if events[0][1] & pollout else 0))
                if not ready:
                    break  # an error on the socket: the cooperative wait reports it
                state = gen.send(ready)
                poller.modify(fileno, masks[state])
        except StopIteration as end:
            return end.value
        return cooperative(_resumed(state, gen), fileno, interval, timeout)

    wait.holds_while_crowded = True
    waiting.wait = wait


def _resumed(state, gen):
    """``gen`` again from ``state``, which it has already yielded (for a wait to go on)."""
    while True:
        ready = yield state
        try:
            state = gen.send(ready)
        except StopIteration as end:
            return end.value
