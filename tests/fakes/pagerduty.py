"""A fake PagerDuty Events API v2: a real HTTP server on 127.0.0.1 that behaves as documented.

It validates events the way PagerDuty does (``shared/spec/pagerduty-events-v2.md``), answers 202
with a dedup_key, opens at most one incident per (routing_key, dedup_key), records resolves, and
can be told to answer with PagerDuty's error shapes, to hang, or to refuse connections.

It also calls back as PagerDuty's V3 webhooks do ("Webhooks v3" in the facts file): once
subscribed (``subscribe``), ``post_webhook`` sends one incident event, signed with the
subscription's secret in ``X-PagerDuty-Signature``, with an ``X-Webhook-Id``, checked against
``WEBHOOK_SCHEMA`` first, and sent again (same id) while the answer is a 5xx or 429.
"""
import hashlib
import hmac
import itertools
import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import requests

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


WEBHOOK_EVENT_TYPES = (
    "incident.triggered", "incident.acknowledged", "incident.unacknowledged",
    "incident.reassigned", "incident.escalated", "incident.resolved", "incident.reopened",
    "incident.annotated",
)
_REFERENCE = {
    "type": "object",
    "required": ["id", "type", "summary"],
    "properties": {"id": {"type": "string"}, "type": {"type": "string"},
                   "summary": {"type": "string"}, "html_url": {"type": "string"},
                   "self": {"type": ["string", "null"]}},
}
_INCIDENT = {
    "type": "object",
    "required": ["id", "type", "html_url", "number", "status", "incident_key", "title",
                 "service", "assignees"],
    "properties": {
        "id": {"type": "string"}, "type": {"const": "incident"},
        "html_url": {"type": "string", "pattern": "^https://"},
        "number": {"type": "integer"},
        "status": {"enum": ["triggered", "acknowledged", "resolved"]},
        "incident_key": {"type": ["string", "null"], "maxLength": 255},
        "title": {"type": "string"}, "service": _REFERENCE,
        "assignees": {"type": "array", "items": _REFERENCE},
    },
}
_NOTE = {
    "type": "object",
    "required": ["id", "type", "incident", "content"],
    "properties": {"id": {"type": "string"}, "type": {"const": "incident_note"},
                   "incident": _REFERENCE, "content": {"type": "string"}},
}
# One event per POST: {"event": {id, event_type, resource_type, occurred_at, agent, data}}.
WEBHOOK_SCHEMA = {
    "type": "object",
    "required": ["event"],
    "properties": {"event": {
        "type": "object",
        "required": ["id", "event_type", "resource_type", "occurred_at", "agent", "data"],
        "properties": {
            "id": {"type": "string"},
            "event_type": {"enum": list(WEBHOOK_EVENT_TYPES)},
            "resource_type": {"const": "incident"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "agent": {"oneOf": [_REFERENCE, {"type": "null"}]},
            "data": {"oneOf": [_INCIDENT, _NOTE]},
        },
    }},
}
_webhook_validator = jsonschema.Draft202012Validator(WEBHOOK_SCHEMA)
WEBHOOK_RETRIES = 3


def signature(secret, raw):
    return "v1=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _user(name):
    return {"id": "P" + hashlib.sha1(name.encode()).hexdigest()[:6].upper(),
            "type": "user_reference", "summary": name,
            "html_url": "https://acme.pagerduty.com/users/PXPGF42"}


class FakePagerDuty(http.FakeHttpService):
    name = "fake PagerDuty"

    def __init__(self, known_keys=None):
        super().__init__()
        # Well-formed keys PagerDuty knows; None accepts any well-formed key.
        self.known_keys = set(known_keys) if known_keys is not None else None
        self.incidents = {}
        self.webhook_url = None
        self.webhook_secret = None
        self.webhook_answers = []  # (X-Webhook-Id, status) for every webhook post
        self._post = None
        self._numbers = itertools.count(101)
        self._incident_ids = {}

    @property
    def resolves(self):
        """The resolve events PagerDuty accepted, in order."""
        with self._lock:
            return [r.body for r in self.received
                    if r.status == 202 and r.body.get("event_action") == "resolve"]

    # -- the webhook side -----------------------------------------------------------------
    def subscribe(self, url, secret, post=None):
        """Post incident events to ``url`` signed with ``secret``. ``post(url, data, headers)``
        returns the status (default: a real HTTP POST)."""
        self.webhook_url = url
        self.webhook_secret = secret
        self._post = post or (lambda u, data, headers: requests.post(
            u, data=data, headers=headers, timeout=10).status_code)

    def webhook_body(self, event_type, dedup_key, agent="Alex Oncall", assignees=("Alex Oncall",),
                     note=None, occurred_at=None):
        """A V3 webhook body as PagerDuty sends it, for the incident opened with
        ``dedup_key``."""
        incident_id = self._incident_ids.setdefault(
            dedup_key, ("Q" + uuid.uuid4().hex[:13].upper(), next(self._numbers)))
        status = {"incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}.get(
            event_type, "triggered")
        reference = {"id": incident_id[0], "type": "incident_reference",
                     "summary": f"[#{incident_id[1]}] Authentication request",
                     "html_url": f"https://acme.pagerduty.com/incidents/{incident_id[0]}"}
        if event_type == "incident.annotated":
            data = {"id": "N" + uuid.uuid4().hex[:13].upper(), "type": "incident_note",
                    "incident": reference, "content": note or "Called the user back."}
        else:
            data = {"id": incident_id[0], "type": "incident", "html_url": reference["html_url"],
                    "number": incident_id[1], "status": status, "incident_key": dedup_key,
                    "title": "Authentication request from SendAuth",
                    "service": {"id": "PSERVIC", "type": "service_reference",
                                "summary": "SendAuth"},
                    "assignees": [_user(name) for name in assignees]}
        return {"event": {
            "id": "01" + uuid.uuid4().hex[:24].upper(), "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": (occurred_at or datetime.now(timezone.utc)).isoformat(),
            "agent": _user(agent) if agent else None, "data": data,
        }}

    def post_webhook(self, event_type=None, dedup_key=None, *, body=None, webhook_id=None,
                     signatures=None, **details):
        """Send one webhook (``body``, or one made by ``webhook_body``); again with the same
        X-Webhook-Id while the answer is a 5xx or 429, at most WEBHOOK_RETRIES more times.
        ``signatures``: the header's values instead of the right one. Returns the last
        status."""
        body = body or self.webhook_body(event_type, dedup_key, **details)
        errors = [e.message for e in _webhook_validator.iter_errors(body)]
        assert not errors, f"not a V3 webhook as PagerDuty sends it: {errors}"
        raw = json.dumps(body).encode()
        webhook_id = webhook_id or str(uuid.uuid4())
        headers = {"Content-Type": "application/json", "X-Webhook-Id": webhook_id,
                   "User-Agent": "PagerDuty-Webhook/V3.0"}
        header = ",".join(signatures) if signatures is not None else signature(
            self.webhook_secret, raw)
        if header:
            headers["X-PagerDuty-Signature"] = header
        for _ in range(1 + WEBHOOK_RETRIES):
            status = self._post(self.webhook_url, raw, headers)
            self.webhook_answers.append((webhook_id, status))
            if status < 500 and status != 429:
                break
        return status

    def acknowledge(self, dedup_key, by="Alex Oncall"):
        return self.post_webhook("incident.acknowledged", dedup_key, agent=by)

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
