"""One signed POST of a webhook message to the address the guard checked.

Signed with the Standard Webhooks scheme by the ``standardwebhooks`` package (one signature per
secret: two while a rotated secret overlaps). The request goes to the checked IP address with
the URL's host as the TLS server name and ``Host`` header, never follows a redirect, has one
time limit, and reads at most WEBHOOK_ANSWER_MAX_BYTES of the answer.
"""
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import urllib3
from standardwebhooks import Webhook

from ...core.secrets import redact
from ...core.tokens import redact_tokens
from .guard import AddressRefused, resolve

ANSWER_SHOWN_CHARS = 300
USER_AGENT = "SendAuth-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``sent`` (2xx), ``gone`` (410: turn the endpoint off) or
    ``failed`` (anything else: retried on the schedule)."""

    outcome: str
    http_status: int | None
    answer: str
    duration_ms: int
    retry_after: float | None = None


def signed_headers(secrets, msg_id, body, at=None):
    """The Standard Webhooks headers for ``body``: one ``v1,`` signature per secret."""
    at = at or datetime.now(timezone.utc)
    signature = " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature, "Content-Type": "application/json",
            "User-Agent": USER_AGENT}


def deliver(url, msg_id, body, secrets, config):
    """Send ``body`` (bytes) to ``url``; never raises for what the network or receiver does."""
    started = time.monotonic()
    try:
        target = resolve(url, config["WEBHOOKS_ALLOW_PRIVATE_NETWORKS"])
    except AddressRefused as exc:
        return Outcome("failed", None, f"Not sent: {exc}", 0)
    headers = signed_headers(secrets, msg_id, body)
    default_port = 443 if target.scheme == "https" else 80
    headers["Host"] = target.host if target.port == default_port else \
        f"{target.host}:{target.port}"
    try:
        status, raw, retry_after, location = _post(target, body, headers, config)
    except urllib3.exceptions.HTTPError as exc:
        return Outcome("failed", None, _network_words(exc), _ms_since(started))
    answer = _shown(raw, secrets)
    if 200 <= status < 300:
        outcome = "sent"
    elif status == 410:
        outcome = "gone"
    else:
        outcome = "failed"
        if 300 <= status < 400:
            shown = redact_tokens(location or "nowhere")[:ANSWER_SHOWN_CHARS]
            answer = f"A redirect (not followed) to {shown}"
    return Outcome(outcome, status, answer, _ms_since(started), retry_after)


def _post(target, body, headers, config):
    """The status, the start of the answer, Retry-After in seconds, and Location."""
    limit = config["WEBHOOK_TIMEOUT_SECONDS"]
    deadline = time.monotonic() + limit
    timeout = urllib3.Timeout(total=limit)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, server_hostname=target.host,
            assert_hostname=target.host, cert_reqs="CERT_REQUIRED", maxsize=1, retries=False)
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, maxsize=1,
                                          retries=False)
    with pool:
        response = pool.urlopen("POST", target.path, body=body, headers=headers,
                                redirect=False, retries=False, timeout=timeout,
                                preload_content=False, assert_same_host=False)
        try:
            raw = _start_of(response, config["WEBHOOK_ANSWER_MAX_BYTES"], deadline)
        finally:
            response.close()  # the rest of a huge answer is never read
        return (response.status, raw, _retry_after(response.headers.get("Retry-After")),
                response.headers.get("Location"))


def _start_of(response, cap, deadline):
    """At most ``cap`` bytes of the answer, read until the time limit: a body trickled a byte
    at a time does not stretch the request past it (its status already decided the outcome)."""
    raw = b""
    while len(raw) < cap and time.monotonic() < deadline:
        chunk = response.read1(min(1024, cap - len(raw)))  # one read from the socket
        if not chunk:
            break
        raw += chunk
    return raw


def _retry_after(value):
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _shown(raw, secrets):
    """The start of an answer, as text, with tokens and our secrets masked."""
    text = raw.decode("utf-8", "replace").strip()[:ANSWER_SHOWN_CHARS]
    for secret in secrets:
        text = redact(text, secret)
    return redact_tokens(text)


def _network_words(exc):
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # before timeouts: a subclass
        return "The connection was refused or could not be made"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "No answer in time (timed out)"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "The TLS handshake failed (certificate or protocol)"
    return f"The connection failed ({type(exc).__name__})"


def _ms_since(started):
    return int((time.monotonic() - started) * 1000)
