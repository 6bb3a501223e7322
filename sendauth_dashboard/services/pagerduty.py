"""PagerDuty Events API v2: build trigger events, send them, and classify the answers.

The facts this follows are in ``shared/spec/pagerduty-events-v2.md``: the routing key is 32
letters or digits (case kept), summary at most 1024 characters, the whole event at most 512 KB,
202 means accepted, 400 never succeeds on retry, 429/5xx/timeouts may. SendAuth never resolves
an incident itself.
"""
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests

KEY_LENGTH = 32
_KEY_RE = re.compile(r"[A-Za-z0-9]{%d}" % KEY_LENGTH)
SUMMARY_MAX_CHARS = 1024
DEDUP_KEY_MAX_CHARS = 255
EVENT_MAX_BYTES = 512 * 1024
ERROR_TEXT_MAX_CHARS = 1000
CLIENT_NAME = "SendAuth"


class IntegrationKeyError(ValueError):
    """The pasted integration key is not a well-formed Events API v2 key."""


def clean_integration_key(raw):
    """The key trimmed of surrounding white space, case kept; IntegrationKeyError says what is wrong."""
    key = (raw or "").strip()
    if _KEY_RE.fullmatch(key):
        return key
    problems = []
    if len(key) != KEY_LENGTH:
        problems.append(f"yours has {len(key)} character{'s' if len(key) != 1 else ''}")
    odd = sorted({c for c in key if not (c.isascii() and c.isalnum())}, key=key.index)
    if odd:
        shown = ", ".join(_describe_character(c) for c in odd[:5])
        problems.append(f"it contains {shown}")
    raise IntegrationKeyError(
        f"The integration key must be {KEY_LENGTH} letters or digits; {' and '.join(problems)}. "
        "Copy it again from PagerDuty: Service → Integrations → Events API V2."
    )


def _describe_character(c):
    if c.isspace():
        return "a space" if c == " " else "white space"
    if c.isprintable():
        return f"'{c}'"
    return f"the character U+{ord(c):04X}"


def truncate(text, limit):
    """Cut by characters, never in the middle of one, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def source_from(base_url):
    return urlsplit(base_url).hostname or "sendauth-dashboard"


def trigger_event(*, routing_key, severity, dedup_key, summary, source, custom_details,
                  links=(), client_url=None, timestamp=None):
    """An Events API v2 trigger, exactly as PagerDuty documents it, kept under 512 KB."""
    event = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key[:DEDUP_KEY_MAX_CHARS],
        "payload": {
            "summary": truncate(summary, SUMMARY_MAX_CHARS),
            "source": source,
            "severity": severity,
            "timestamp": (timestamp or datetime.now(timezone.utc)).isoformat(),
            "component": "authentication",
            "class": "authentication request",
            "custom_details": custom_details,
        },
        "links": [dict(link) for link in links],
        "client": CLIENT_NAME,
    }
    if client_url:
        event["client_url"] = client_url
    return _fit(event)


def _fit(event):
    """Long custom details give way first when the event would exceed PagerDuty's 512 KB."""
    if encoded_size(event) <= EVENT_MAX_BYTES:
        return event
    details = event["payload"]["custom_details"]
    for name in ("context", "message"):
        if name in details:
            details[name] = truncate(details[name], 1000)
    if encoded_size(event) > EVENT_MAX_BYTES:
        event["payload"]["custom_details"] = {"note": "details omitted: the event exceeded 512 KB"}
    return event


def encoded_size(event):
    return len(json.dumps(event).encode())


def transaction_trigger(*, transaction, routing_key, severity, link, base_url):
    """The incident for an authentication request; dedup_key is the transaction's id."""
    requestor = transaction.requestor
    user = transaction.user
    return trigger_event(
        routing_key=routing_key,
        severity=severity,
        dedup_key=transaction.public_id,
        summary=f"Authentication request from {requestor.name}",
        source=source_from(base_url),
        timestamp=transaction.created_at,
        custom_details={
            "requestor": f"{requestor.name} <{requestor.email}>",
            "user": f"{user.name} <{user.email}>",
            "transaction_id": transaction.public_id,
            "message": transaction.message,
            "context": transaction.context or "",
            "authentication_link": link,
            "expires_at": transaction.expires_at.isoformat(),
        },
        links=[{"href": link, "text": f"Authenticate as {user.name} (verify or deny)"}],
        client_url=f"{base_url}/transactions/{transaction.public_id}",
    )


def test_trigger(*, routing_key, severity, sent_by, base_url, dedup_key):
    """A real trigger, labelled as a test everywhere PagerDuty shows it."""
    return trigger_event(
        routing_key=routing_key,
        severity=severity,
        dedup_key=dedup_key,
        summary=f"[TEST] Authentication request from SendAuth (test sent by {sent_by})",
        source=source_from(base_url),
        custom_details={
            "test": True,
            "sent_by": sent_by,
            "note": "A test incident from SendAuth's PagerDuty settings. Nobody needs to "
                    "authenticate; resolve it in PagerDuty.",
        },
        links=[{"href": f"{base_url}/settings/pagerduty", "text": "SendAuth PagerDuty settings"}],
        client_url=f"{base_url}/settings/pagerduty",
    )


@dataclass(frozen=True)
class SendResult:
    """What one send came to: ``accepted``, ``permanent`` (never retry) or ``retryable``."""

    outcome: str
    http_status: int | None = None
    error: str | None = None
    dedup_key: str | None = None
    retry_after: float | None = field(default=None, compare=False)

    @property
    def accepted(self):
        return self.outcome == "accepted"


def classify(response):
    status = response.status_code
    if status == 202 or 200 <= status < 300:
        dedup_key = _json_field(response, "dedup_key")
        return SendResult("accepted", status, dedup_key=dedup_key)
    error = error_text(response)
    if status == 429 or status >= 500:
        return SendResult("retryable", status, error, retry_after=retry_after(response))
    return SendResult("permanent", status, error)


def _json_field(response, name):
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def error_text(response):
    """PagerDuty's own words for an error, whatever shape the body has."""
    status = f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = []
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts.append("; ".join(str(e) for e in errors))
        elif body.get("message"):
            parts.append(str(body["message"]))
        elif body.get("status"):
            parts.append(str(body["status"]))
        if parts:
            return truncate(f"{status}: {' '.join(parts)}", ERROR_TEXT_MAX_CHARS)
    text = (response.text or "").strip()
    if text and not text.lstrip().startswith("<"):
        return truncate(f"{status}: {text}", ERROR_TEXT_MAX_CHARS)
    return f"{status}: {response.reason or 'no explanation given'}"


def retry_after(response):
    """Seconds from a Retry-After header (seconds or an HTTP date), if there is one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class EventsClient:
    """Sends events to the Events API with connect and read timeouts.

    One requests.Session per thread, so the dispatcher's worker threads keep their
    connections alive without sharing a session between threads.
    """

    def __init__(self, url, connect_timeout, read_timeout):
        self.url = url
        self.timeout = (connect_timeout, read_timeout)
        self._local = threading.local()

    @classmethod
    def from_config(cls, config):
        return cls(config["PAGERDUTY_EVENTS_URL"], config["PAGERDUTY_CONNECT_TIMEOUT"],
                   config["PAGERDUTY_READ_TIMEOUT"])

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = "SendAuth-Dashboard"
        return session

    def send(self, event):
        try:
            response = self._session().post(self.url, json=event, timeout=self.timeout)
        except requests.ConnectTimeout:
            return SendResult("retryable", error=f"Could not connect to PagerDuty within "
                                                 f"{self.timeout[0]:g} s (timeout)")
        except requests.Timeout:
            return SendResult("retryable", error=f"PagerDuty did not answer within "
                                                 f"{self.timeout[1]:g} s (timeout)")
        except requests.ConnectionError:
            return SendResult("retryable", error="Could not connect to PagerDuty "
                                                 "(connection refused or network error)")
        except requests.RequestException as exc:
            return SendResult("retryable", error=f"Request to PagerDuty failed: "
                                                 f"{exc.__class__.__name__}")
        return classify(response)
