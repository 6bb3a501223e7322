"""PagerDuty Events API v2: build trigger events, send them, and classify the answers.

The facts this follows are in ``shared/spec/pagerduty-events-v2.md``: the routing key is 32
letters or digits (case kept), summary at most 1024 characters, the whole event at most 512 KB,
202 means accepted, 400 never succeeds on retry, 429/5xx/timeouts may. An incident is resolved
with a ``resolve`` carrying the same dedup_key, after a reviewer asks for it (or, when the
organisation turned it on, when the request is final). PagerDuty's V3 webhooks come back signed
with the subscription's secret (``signature_matches``).
"""
import hashlib
import hmac
import json
import re
import secrets as random_tokens
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ..core.errors import ServiceError
from ..models import SEVERITIES, PagerDutySettings
from .base import Channel, ChannelUnavailable, Page, Prepared
from .http import (
    HttpClient,
    SendResult,
    http_error_text,
    is_retryable_status,
    json_body,
    retry_after,
    truncate,
)
from .integration import Setting, choice

KEY_LENGTH = 32
_KEY_RE = re.compile(r"[A-Za-z0-9]{%d}" % KEY_LENGTH)
SUMMARY_MAX_CHARS = 1024
DEDUP_KEY_MAX_CHARS = 255
EVENT_MAX_BYTES = 512 * 1024
CLIENT_NAME = "SendAuth"


class IntegrationKeyError(ServiceError):
    """The pasted integration key is not a well-formed Events API v2 key."""


def clean_integration_key(raw):
    """The key trimmed of surrounding white space, case kept; IntegrationKeyError says what is
    wrong."""
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
    """The incident for an authentication request; dedup_key is the transaction's id (for a
    group's member, with the member's: each member's incident carries their own link)."""
    requestor = transaction.requestor
    user = transaction.user
    return trigger_event(
        routing_key=routing_key,
        severity=severity,
        dedup_key=getattr(transaction, "dedup_key", transaction.public_id),
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


def resolve_event(*, routing_key, dedup_key):
    """Resolves the open incident that the trigger with ``dedup_key`` opened."""
    return {"routing_key": routing_key, "event_action": "resolve",
            "dedup_key": dedup_key[:DEDUP_KEY_MAX_CHARS]}


TEST_DEDUP_KEY_PREFIX = "sendauth-test-"
_TEST_DEDUP_KEY_RE = re.compile(re.escape(TEST_DEDUP_KEY_PREFIX) + "[0-9a-f]{16}")


def is_test_dedup_key(value):
    """Whether ``value`` is the dedup_key of a test incident from the settings page."""
    return isinstance(value, str) and _TEST_DEDUP_KEY_RE.fullmatch(value) is not None


WEBHOOK_SECRET_MAX_CHARS = 200


def clean_webhook_secret(raw):
    """The subscription's signing secret, trimmed; ValueError says what is wrong."""
    secret = (raw or "").strip()
    if not secret:
        return None
    if len(secret) > WEBHOOK_SECRET_MAX_CHARS or any(c.isspace() for c in secret):
        raise ValueError(
            "The signing secret is one word of letters, digits and symbols, as PagerDuty shows "
            "it once when the webhook subscription is created. Copy it again, or create the "
            "subscription again to get a new one.")
    return secret


def signature_matches(secret, body, header):
    """Whether any ``v1=`` signature in ``header`` is the HMAC-SHA256 of ``body`` keyed with
    ``secret`` (several appear while PagerDuty rotates the secret). Constant-time compare."""
    if not secret or not header:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    matched = False
    for part in header.split(","):
        version, _, value = part.strip().partition("=")
        if version == "v1" and value:
            # Compare every value, so the time taken does not tell which one matched.
            matched |= hmac.compare_digest(expected, value.strip().lower())
    return matched


def classify(response):
    status = response.status_code
    if 200 <= status < 300:
        return SendResult("accepted", status, external_id=_dedup_key(response))
    error = error_text(response)
    if is_retryable_status(status):
        return SendResult("retryable", status, error, retry_after=retry_after(response))
    return SendResult("permanent", status, error)


def _dedup_key(response):
    body = json_body(response)
    return body.get("dedup_key") if body else None


def error_text(response):
    """PagerDuty's own words for an error, whatever shape the body has."""
    body = json_body(response) or {}
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        detail = "; ".join(str(e) for e in errors)
    else:
        detail = body.get("message") or body.get("status")
    return http_error_text(response, str(detail) if detail else None)


class EventsClient:
    """Sends events to the Events API with connect and read timeouts."""

    def __init__(self, url, connect_timeout, read_timeout):
        self.url = url
        self.http = HttpClient("PagerDuty", connect_timeout, read_timeout)

    @classmethod
    def from_config(cls, config):
        return cls(config["PAGERDUTY_EVENTS_URL"], config["PAGERDUTY_CONNECT_TIMEOUT"],
                   config["PAGERDUTY_READ_TIMEOUT"])

    def send(self, event):
        return self.http.post(self.url, classify, json=event)


SEVERITY_LABELS = {
    "critical": "Critical: production access, emergencies; immediate response",
    "error": "Error: important, standard production access; escalated after timeout",
    "warning": "Warning: non-production, routine access; lower priority",
    "info": "Info: testing or development access; lowest priority",
}


class PagerDuty(Channel):
    name = "pagerduty"
    label = "PagerDuty"
    noun = "PagerDuty"
    model = PagerDutySettings
    settings = (
        Setting("integration_key", "integration key", clean_integration_key, secret=True,
                needed="paste an integration key", kind="password",
                field_label="Integration key",
                description="The Events API v2 integration key: 32 letters or digits. In "
                            "PagerDuty: Service → Integrations → Events API V2. Leave empty to "
                            "keep the stored key.",
                render_kw={"placeholder": "Paste the 32-character key"}),
        Setting("severity", "severity", resets_status=False, kind="select",
                clean=choice(SEVERITIES, f"Choose a severity: {', '.join(SEVERITIES)}."),
                field_label="Severity", choices=SEVERITY_LABELS, default="critical"),
        Setting("webhook_secret", "webhook signing secret", clean_webhook_secret, secret=True,
                required=False, resets_status=False, kind="password", word="signing-secret",
                field_label="Webhook signing secret (optional)",
                description="To see on each request whether the incident was acknowledged, "
                            "escalated or resolved: in PagerDuty, Integrations → Generic "
                            "Webhooks (v3) → New Webhook, deliver to the address below, and "
                            "paste the signing secret PagerDuty shows once. Leave empty to keep "
                            "the stored secret."),
    )
    enable_hint = ": find it in PagerDuty under Service → Integrations → Events API V2"
    preference_description = ("An incident on the organisation's PagerDuty service. You need "
                              "to be on call for it, or have access to it.")
    page = Page(
        what="incident",
        provider="PagerDuty",
        accepted_advice="Check that it reached the right people, then resolve it with the "
                        "button below or in PagerDuty.",
        refused_advice="Check the integration key and that the service has an Events API V2 "
                       "integration.",
        secret_word="key",
        enable_label="Enable PagerDuty integration",
        enable_description="Send authentication requests to PagerDuty as incidents.",
        external_id_label="dedup key",
        test_resolvable=True,
        webhook_endpoint="webhooks.pagerduty",
    )
    client_class = EventsClient

    def build(self, settings, transaction, link):
        return transaction_trigger(
            transaction=transaction,
            routing_key=self.secret(),
            severity=settings.severity,
            link=link,
            base_url=self.config["BASE_URL"],
        )

    def prepare_resolve(self, dedup_key):
        """A resolve of a request's incident, opened with ``dedup_key``; ChannelUnavailable
        says why it cannot be sent now."""
        problem = self.problem()
        if problem:
            raise ChannelUnavailable(problem)
        return Prepared(resolve_event(routing_key=self.secret(), dedup_key=dedup_key))

    def prepare_test_resolve(self, dedup_key, draft):
        """A resolve of a test incident: like the test, with the key the form has (``draft``),
        saved or not, the channel on or off."""
        return Prepared(resolve_event(routing_key=self.secret(draft), dedup_key=dedup_key))

    def webhook_secret(self):
        return self.stored_secret(self.webhook_secret_setting)

    @property
    def webhook_secret_setting(self):
        return next(s for s in self.settings if s.name == "webhook_secret")

    def build_test(self, settings, sent_by):
        return test_trigger(
            routing_key=self.secret(settings),
            severity=settings.severity,
            sent_by=sent_by.name,
            base_url=self.config["BASE_URL"],
            dedup_key=f"{TEST_DEDUP_KEY_PREFIX}{random_tokens.token_hex(8)}",
        )

    def build_notice(self, settings, user, notice):
        """An incident of severity info: it tells, nobody needs to authenticate."""
        return trigger_event(
            routing_key=self.secret(),
            severity="info",
            dedup_key=f"sendauth-notice-{random_tokens.token_hex(8)}",
            summary=f"SendAuth: {notice.subject}",
            source=source_from(self.config["BASE_URL"]),
            custom_details={"user": f"{user.name} <{user.email}>", "notice": notice.text},
        )

    @staticmethod
    def secrets(prepared):
        return [prepared["routing_key"]]
