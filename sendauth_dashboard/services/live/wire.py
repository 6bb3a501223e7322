"""The wire format: an event as a server-sent event frame, and live frames encoded once per
message object for every watcher of the process."""
import json
import random

# How long a browser waits before reconnecting after a stream ends (the ``retry:`` field).
STREAM_RETRY_MS = 2000
# When the server ends every stream at once (a restart), each browser comes back after a time
# drawn from this range instead: under the 4 s after which the page says live updates are
# paused (static/js/live.js), and spread, so 5,000 browsers do not all return in one second.
SHUTDOWN_RETRY_MS = (500, 4000)


def opening():
    """A stream's first frame: when to come back, and a comment that says it is open."""
    return f"retry: {STREAM_RETRY_MS}\n: stream open\n\n"


def goodbye(rng=random):
    """A stream's last frame when the server ends every stream together (shutting down):
    when to come back, a time of its own."""
    return f"retry: {rng.randrange(*SHUTDOWN_RETRY_MS)}\n: server restarting\n\n"


KEEPALIVE = ": keepalive\n\n"


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


live_frames = SharedFormat()


