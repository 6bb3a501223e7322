"""Stream slots: how many live streams are open in this process, in all and per person."""
import threading

from ...runtime import runtime


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
    ``Conduit.gone``) are asked whether their browser has hung up, and those give their slots back.
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


