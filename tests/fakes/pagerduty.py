"""A fake PagerDuty Events API v2: a real HTTP server on 127.0.0.1 that behaves as documented.

It validates events the way PagerDuty does (``shared/spec/pagerduty-events-v2.md``), answers 202
with a dedup_key, opens at most one incident per (routing_key, dedup_key), and can be told to
answer with PagerDuty's error shapes, to hang, or to refuse connections.
"""
import json
import re
import uuid
from pathlib import Path

import jsonschema

from . import http

KEY_RE = re.compile(r"[A-Za-z0-9]{32}")
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_EVENT_BYTES = 512 * 1024

RATE_LIMITED = {"status": "throttle event",
                "message": "Requests for this service are arriving too quickly. "
                           "Please retry later."}


class Answer(http.Answer):
    """PagerDuty's answers, as its documentation shows them."""

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


class FakePagerDuty(http.FakeHttpService):
    name = "fake PagerDuty"

    def __init__(self, known_keys=None):
        super().__init__()
        # Well-formed keys PagerDuty knows; None accepts any well-formed key.
        self.known_keys = set(known_keys) if known_keys is not None else None
        self.incidents = {}

    @property
    def url(self):
        return f"{self.base_url}/v2/enqueue"

    @property
    def accepted(self):
        with self._lock:
            return [r.body for r in self.received if r.status == 202]

    def process(self, path, headers, body, raw):
        if path != "/v2/enqueue":
            return Answer(404, {"status": "not found"})
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
