"""Recent events: the messages this process fanned out lately, in id order, which every stream
resuming from among them catches up from without reading the table itself."""
import threading
from bisect import bisect_right

# How long a filler may take before the streams waiting for it read for themselves.
FILL_WAIT_SECONDS = 30.0


class RecentEvents:
    """The last ``size`` messages of this process, with the ids they cover for certain.

    After a restart every browser reconnects at once with its ``Last-Event-ID``, and each
    stream read what it had missed from the table on its own: at 5,000 streams, 10,000 queries
    and 5,000 replays drawn, which stalled every send for 20 s (bench/storm.py). Nearly all of
    them resume from the same few ids, so the first stream reads the table once for the process
    (``since``, given ``read``) and the others take the same messages.

    The window covers ``(low, high]``: it holds every event with an id in that range (ids
    missing from it do not exist: rolled back). It grows from the broker's fan-out (``heard``)
    only when a message is the next id, or the broker knows there is nothing between (``after``);
    any other message starts it afresh, since the ids between may yet arrive, or never did here.
    It grows back from the table (``since``) for a stream resuming from before it, at most
    ``size`` events back; a stream resuming from further back reads the table itself.
    """

    def __init__(self, size=2000):
        self.size = size
        self._lock = threading.Lock()
        self._ids = []
        self._messages = []
        self._low = self._high = None
        self._filling = None  # the threading.Event of the fill under way

    def heard(self, message, after=None):
        """A message fanned out (called before any stream is given it, so a stream that reads
        the window after subscribing finds it in one or the other)."""
        event_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(event_id, int):
            return
        with self._lock:
            high = self._high
            if high is not None and event_id <= high:
                return  # had already, or older than the window: never a gap inside it
            if high is None or (event_id != high + 1 and after != high):
                self._ids, self._messages, self._low = [], [], event_id - 1
            self._ids.append(event_id)
            self._messages.append(message)
            self._high = event_id
            self._trim()

    def forget(self):
        """Start afresh: live messages may have been lost (the broker lost Redis meanwhile),
        so the window no longer reaches the newest events."""
        with self._lock:
            self._ids, self._messages, self._low, self._high = [], [], None, None

    def covered(self, after_id):
        """(the messages after ``after_id``, the id they reach) when the window covers it,
        else None."""
        with self._lock:
            if self._low is None or not self._low <= after_id <= self._high:
                return None
            return self._messages[bisect_right(self._ids, after_id):], self._high

    def since(self, after_id, read, latest):
        """``covered(after_id)``, filling the window from the table when it does not reach back
        that far: once for every stream that resumes from there (the others wait for it);
        None when ``after_id`` is more than ``size`` events back (the stream reads the table
        itself). ``read(after_id, before_id)``: the messages between two ids, oldest first;
        ``latest()``: the newest id, every id up to it settled (``event_log.latest_event_id``)."""
        for _ in range(3):  # streams resuming from a few different ids: a fill each
            found = self.covered(after_id)
            if found is not None:
                return found
            with self._lock:
                filling, mine = self._filling, self._filling is None
                if mine:
                    filling = self._filling = threading.Event()
            if not mine:
                filling.wait(FILL_WAIT_SECONDS)
                continue
            try:
                return self._fill(after_id, read, latest)
            finally:
                with self._lock:
                    self._filling = None
                filling.set()
        return None

    def _fill(self, after_id, read, latest):
        """Read the events from ``after_id`` up to the window (every id below its first message
        has settled: that message committed) or, with no window, up to the newest; join them to
        it. Returns what ``covered`` would; None when the two do not meet (the window moved on
        meanwhile, or it holds too many to keep them all): the stream reads the table itself,
        up to the newest, which the window no longer reaches from there."""
        with self._lock:
            low = self._low
        upto = low if low is not None else latest()
        if not after_id <= upto <= after_id + self.size:
            return None  # too far back (or ahead of the table): the stream reads it itself
        rows = list(read(after_id, upto + 1)) if upto > after_id else []
        with self._lock:
            joined = self._join(after_id, upto, rows)
        return self.covered(after_id) if joined else None

    def _join(self, after_id, upto, rows):
        """Join the events of ``(after_id, upto]`` read from the table to the window, when the
        two ranges meet; False when they do not (the window has moved on since)."""
        low, high = self._low, self._high
        if low is not None and not (low <= upto and after_id <= high):
            return False
        both = {m["id"]: m for m in rows}
        both.update(zip(self._ids, self._messages, strict=True))
        self._ids = sorted(both)
        self._messages = [both[event_id] for event_id in self._ids]
        self._low = after_id if low is None else min(low, after_id)
        self._high = upto if high is None else max(high, upto)
        self._trim()
        return True

    def _trim(self):
        excess = len(self._ids) - self.size
        if excess > 0:
            self._low = self._ids[excess - 1]
            del self._ids[:excess], self._messages[:excess]
