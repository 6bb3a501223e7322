"""A fake PagerDuty Events API v2: a real HTTP server on 127.0.0.1 that behaves as documented.

It validates events the way PagerDuty does (``shared/spec/pagerduty-events-v2.md``), answers 202
with a dedup_key, opens at most one incident per (routing_key, dedup_key), and can be told to
answer with PagerDuty's error shapes, to hang, or to refuse connections.
"""
import json
import re
import sys
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema

KEY_RE = re.compile(r"[A-Za-z0-9]{32}")
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_EVENT_BYTES = 512 * 1024

RATE_LIMITED = {"status": "throttle event",
                "message": "Requests for this service are arriving too quickly. Please retry later."}


@dataclass
class Received:
    body: dict | None
    raw: bytes
    headers: dict
    status: int


@dataclass
class Answer:
    """What the fake says to one request: a status, a body, and headers."""

    status: int
    body: object = None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    hang: bool = False

    @classmethod
    def rate_limited(cls, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls(429, RATE_LIMITED, headers)

    @classmethod
    def server_error(cls):
        return cls(500, "Internal Server Error", content_type="text/plain")

    @classmethod
    def invalid_routing_key(cls):
        return cls(400, "Invalid routing key", content_type="text/plain")

    @classmethod
    def invalid_event(cls, *errors):
        return cls(400, {"status": "invalid event", "message": "Event object is invalid",
                         "errors": list(errors)})

    @classmethod
    def hanging(cls):
        return cls(0, hang=True)

    @classmethod
    def slow(cls, seconds):
        return cls(202, delay=seconds)


def _enqueue_schema():
    """PagerDuty's published OpenAPI schema of an /enqueue body (PagerDuty/api-schema)."""
    spec = json.loads((Path(__file__).parent / "events-v2-openapi.json").read_text())
    body = spec["paths"]["/enqueue"]["post"]["requestBody"]["content"]["application/json"]
    return {**body["schema"], "components": spec["components"]}


ENQUEUE_SCHEMA = _enqueue_schema()
_schema_validator = jsonschema.Draft202012Validator(ENQUEUE_SCHEMA)


def validate(event):
    """PagerDuty's published schema, then the documented rules the schema leaves out (key
    format, lengths, per-action rules), with PagerDuty's own error strings. [] means valid."""
    errors = [f"{'.'.join(map(str, e.absolute_path)) or 'event'}: {e.message}"
              for e in _schema_validator.iter_errors(event)]
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    elif not KEY_RE.fullmatch(key):
        errors.append("'routing_key' cannot contain non-alphanumeric characters.")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is missing or blank")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' is invalid (must be a string of at most 255 characters)")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or blank")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > 1024:
                errors.append("'payload.summary' is too long (must be at most 1024 characters)")
            source = payload.get("source")
            if not isinstance(source, str) or not source.strip():
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of the following: "
                              "'critical', 'warning', 'error' or 'info')")
            details = payload.get("custom_details")
            if details is not None and not isinstance(details, dict):
                errors.append("'payload.custom_details' must be an object")
    for link in event.get("links") or []:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            errors.append("'links' must be a list of objects with an 'href'")
    return errors


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up (read timeout) is part of the tests, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakePagerDuty:
    def __init__(self, known_keys=None):
        # Well-formed keys PagerDuty knows; None accepts any well-formed key.
        self.known_keys = set(known_keys) if known_keys is not None else None
        self.received = []
        self.incidents = {}
        self._script = deque()
        self._lock = threading.Condition()
        self._release = threading.Event()
        self._server = None
        self._thread = None
        self.port = None

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
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening: connections are refused until ``start()`` again (same port)."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def restart(self):
        self._release.clear()
        return self.start(self.port)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/v2/enqueue"

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

    _always = None

    # -- what happened ----------------------------------------------------------------------
    @property
    def accepted(self):
        with self._lock:
            return [r.body for r in self.received if r.status == 202]

    def wait_for(self, predicate, timeout=10.0):
        """Wait until ``predicate(fake)`` is true; raise AssertionError at the deadline."""
        with self._lock:
            if not self._lock.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(
                    f"fake PagerDuty: condition not met within {timeout} s; received "
                    f"{len(self.received)} requests, {len(self.incidents)} incidents")

    # -- serving ------------------------------------------------------------------------------
    def _next_answer(self):
        with self._lock:
            if self._script:
                return self._script.popleft()
            return self._always

    def _handle(self, request):
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        answer = self._next_answer()
        if answer is not None and answer.hang:
            self._release.wait(60)
            request.close_connection = True
            return
        if answer is not None and answer.delay:
            self._release.wait(answer.delay)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if request.path != "/v2/enqueue":
            answer = Answer(404, {"status": "not found"})
        elif answer is None or answer.status == 202:
            answer = self._process(body, raw)
        with self._lock:
            self.received.append(Received(body, raw, dict(request.headers), answer.status))
            self._lock.notify_all()
        self._reply(request, answer)

    def _process(self, body, raw):
        if len(raw) > MAX_EVENT_BYTES:
            return Answer.invalid_event("Event object is too large (the limit is 512 KB)")
        if not isinstance(body, dict):
            return Answer(400, {"status": "invalid event", "message": "Event object is invalid",
                                "errors": ["Request body is not valid JSON"]})
        errors = validate(body)
        if errors:
            return Answer.invalid_event(*errors)
        key = body["routing_key"]
        if self.known_keys is not None and key not in self.known_keys:
            return Answer.invalid_routing_key()
        dedup_key = body.get("dedup_key") or uuid.uuid4().hex
        if body["event_action"] == "trigger":
            with self._lock:
                self.incidents.setdefault((key, dedup_key), body)
        return Answer(202, {"status": "success", "message": "Event processed",
                            "dedup_key": dedup_key})

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
