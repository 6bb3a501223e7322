"""The one reader of server-sent events in the tests (and bench/): frames parsed as a browser
parses them, read until a condition holds or a deadline passes.

- ``Frames``: text in, frames out (``id``, ``event``, ``data``, ``retry``, comments); keeps a
  frame cut across chunks until its blank line arrives. bench/sse_client.py parses with it.
- ``EventReader``: the events (``data`` decoded from JSON) and comments of one stream, pulled
  from a source of chunks; ``read_until(predicate)`` with ``predicate(reader)``.
- Sources: ``ClientStream`` (Flask's test client), ``HttpStream`` (a real HTTP response,
  through requests); tests/test_stream_conduits.py reads raw chunked bytes off a socket.
"""
import codecs
import json
import queue
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: str | None = None
    comments: list = field(default_factory=list)


class Frames:
    """Parses a stream's text, fed in pieces of any size, into frames."""

    def __init__(self):
        self._text = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, text):
        if isinstance(text, bytes):  # a character may be cut between two pieces
            text = self._decoder.decode(text)
        self._text += text
        frames = []
        while "\n\n" in self._text:
            block, self._text = self._text.split("\n\n", 1)
            frames.append(parse(block))
        return frames


def parse(block):
    frame = Frame()
    data = []
    for line in block.split("\n"):
        if line.startswith(":"):
            frame.comments.append(line[1:].strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name in ("id", "event", "retry"):
                setattr(frame, name, value)
    if data:
        frame.data = "\n".join(data)
    return frame


class EventReader:
    """One stream's events and comments, read from ``next_chunk(timeout)``, which returns the
    next piece of text or bytes, ``None`` once the stream has ended, or raises ``TimeoutError``.

    An event's ``data`` is JSON whose ``id`` is the frame's ``id:`` (checked)."""

    def __init__(self, next_chunk, name="stream"):
        self.events, self.comments, self.frames = [], [], []
        self.ended = False
        self._next_chunk = next_chunk
        self._frames = Frames()
        self._name = name

    @property
    def ids(self):
        return [e["id"] for e in self.events]

    def read_until(self, predicate, timeout=15.0):
        """Read until ``predicate(self)`` holds; fail at the deadline or if the stream ends."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self._name}: condition not met in {timeout} s; got {self.summary()}")
            if self.ended:
                raise AssertionError(f"{self._name} ended; got {self.summary()}")
            try:
                chunk = self._next_chunk(remaining)
            except TimeoutError:
                continue
            if chunk is None:
                self.ended = True
            else:
                self.feed(chunk)
        return self

    def feed(self, chunk):
        for frame in self._frames.feed(chunk):
            self.frames.append(frame)
            self.comments.extend(frame.comments)
            if frame.data is not None:
                message = json.loads(frame.data)
                assert int(frame.id) == message["id"], "the frame's id is not its event's"
                self.events.append(message)

    def summary(self):
        return [(e["id"], e.get("kind")) for e in self.events]


class _Pump:
    """Chunks put by a reading thread, taken with a timeout: a ``next_chunk`` for EventReader."""

    END = None

    def __init__(self):
        self.chunks = queue.Queue()

    def put(self, chunk):
        self.chunks.put(chunk)

    def __call__(self, timeout):
        try:
            return self.chunks.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None


class ClientStream(EventReader):
    """A stream from Flask's test client, requested and read in a thread of its own, as a
    browser's connection would be: a streaming response keeps its request context pushed in
    the thread that reads it."""

    def __init__(self, client, url, **kwargs):
        self._pump = _Pump()
        super().__init__(self._pump, name=f"stream {url}")
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(client, url, kwargs),
                                        daemon=True)
        self._thread.start()
        assert self._opened.wait(30), "the stream did not answer"

    def _read(self, client, url, kwargs):
        response = client.get(url, **kwargs)
        self.status_code, self.headers = response.status_code, response.headers
        self._opened.set()
        try:
            for chunk in response.response:
                self._pump.put(chunk)
                if self._stop.is_set():
                    break
        finally:
            response.close()
            self._pump.put(_Pump.END)

    def close(self):
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the stream did not end"


class HttpStream(EventReader):
    """A stream over real HTTP (a ``requests`` session), read in a thread of its own."""

    def __init__(self, session, url):
        self._pump = _Pump()
        super().__init__(self._pump, name=f"watcher of {url}")
        self.url = url
        self._response = session.get(url, stream=True, timeout=(5, 60))
        assert self._response.status_code == 200, self._response.status_code
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        import requests

        try:
            for chunk in self._response.iter_content(chunk_size=None):
                self._pump.put(chunk)
        except (requests.RequestException, AttributeError, ValueError):
            pass  # the connection closed under the reader (close(), or the server ended)
        finally:
            self._pump.put(_Pump.END)

    def close(self):
        self._response.close()


def live_stream(viewer, broker):
    """The product's stream for ``viewer`` (a generator of frames, no HTTP), once it has
    replayed the table and waits for live events."""
    from sendauth_dashboard.services.live.stream import stream

    body = stream(viewer, 0, broker, heartbeat=0.05, lifetime=30)
    while not next(body).startswith(": keepalive"):
        pass
    return body
