"""What every fake web API has: a real HTTP server on 127.0.0.1 with scripted answers.

A fake subclasses ``FakeHttpService`` and says how it reads a request (``parse``) and how the
real service would answer it (``process``). Tests can script the next answers instead
(``answer_next``, ``answer_always``), make it hang or answer slowly, stop it so connections
are refused, and wait on what it received (``received``, answered; ``arrived``, counted before
the answer, so also those in flight) with a deadline (``wait_for``).
"""
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    raw: bytes
    body: object
    status: int
    at: float = field(default_factory=time.monotonic)  # when it was answered


@dataclass
class Answer:
    """What the fake says to one request: a status, a body, and headers.

    ``status=None`` means: answer as the service would, after ``delay`` seconds.
    """

    status: int | None
    body: object = None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    hang: bool = False

    @classmethod
    def hanging(cls):
        return cls(0, hang=True)

    @classmethod
    def slow(cls, seconds):
        return cls(None, delay=seconds)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up (read timeout) is part of the tests, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeHttpService:
    name = "fake service"

    def __init__(self):
        self.received = []
        self.arrived = 0  # requests read, answered or not yet (in flight)
        self._script = deque()
        self._always = None
        self._lock = threading.Condition()
        self._release = threading.Event()
        self._server = None
        self.port = None

    # -- what a fake says -----------------------------------------------------------------
    def parse(self, raw, headers):
        """The request body as the service reads it."""
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def process(self, path, headers, body, raw):
        """The service's own answer to a request nobody scripted."""
        raise NotImplementedError

    # -- control --------------------------------------------------------------------------
    def start(self, port=0):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                fake._handle(self)

            def log_message(self, format, *args):
                pass

        self._server = _QuietServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self):
        """Stop listening: connections are refused until ``restart()`` (same port)."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def restart(self):
        self._release.clear()
        return self.start(self.port)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def answer_next(self, *answers):
        """The next requests get these answers, in order; then the usual behaviour."""
        with self._lock:
            self._script.extend(answers)

    def answer_always(self, answer):
        """Every request gets ``answer`` until ``answer_normally()``."""
        with self._lock:
            self._script.clear()
            self._always = answer

    def answer_normally(self):
        with self._lock:
            self._script.clear()
            self._always = None
            self._release.set()
            self._release = threading.Event()

    def wait_for(self, predicate, timeout=10.0):
        """Wait until ``predicate(fake)`` is true; raise AssertionError at the deadline."""
        with self._lock:
            if not self._lock.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"{self.name}: condition not met within {timeout} s; "
                                     f"received {len(self.received)} requests")

    # -- serving ----------------------------------------------------------------------------
    def _next_answer(self):
        with self._lock:
            if self._script:
                return self._script.popleft()
            return self._always

    def _handle(self, request):
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        with self._lock:
            self.arrived += 1
            self._lock.notify_all()
        answer = self._next_answer()
        if answer is not None and answer.hang:
            self._release.wait(60)
            request.close_connection = True
            return
        if answer is not None and answer.delay:
            self._release.wait(answer.delay)
        headers = dict(request.headers)
        body = self.parse(raw, headers)
        if answer is None or answer.status is None:
            answer = self.process(request.path, headers, body, raw)
        with self._lock:
            self.received.append(Received(request.path, headers, raw, body, answer.status))
            self._lock.notify_all()
        self._reply(request, answer)

    @staticmethod
    def _reply(request, answer):
        if isinstance(answer.body, (dict, list)):
            payload = json.dumps(answer.body).encode()
        else:
            payload = str(answer.body or "").encode()
        request.send_response(answer.status)
        request.send_header("Content-Type", answer.content_type)
        request.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)
