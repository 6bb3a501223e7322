"""What every channel's send comes to, and the HTTP plumbing the web-API channels share.

A send ends ``accepted``, ``permanent`` (retrying cannot help: a refused key, an invalid
number) or ``retryable`` (408, 429, 5xx, timeouts, refused connections). The dispatcher decides
what to do with each; a channel only says which it was, in the provider's own words.
"""
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import requests

ERROR_TEXT_MAX_CHARS = 1000


@dataclass(frozen=True)
class SendResult:
    """What one send came to: ``accepted``, ``permanent`` (never retry) or ``retryable``.

    ``external_id`` is the provider's name for what was sent (PagerDuty's dedup_key, Twilio's
    message SID, Slack's message timestamp, the email's Message-ID).
    """

    outcome: str
    http_status: int | None = None
    error: str | None = None
    external_id: str | None = None
    retry_after: float | None = field(default=None, compare=False)
    # What else the provider said of an accepted send, for the test's result: "2 segments".
    note: str | None = field(default=None, compare=False)

    @property
    def accepted(self):
        return self.outcome == "accepted"


def truncate(text, limit):
    """Cut by characters, never in the middle of one, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def http_error_text(response, detail=None):
    """``HTTP 400: <the provider's words>``; the body's text or the reason when no detail."""
    status = f"HTTP {response.status_code}"
    if detail:
        return truncate(f"{status}: {detail}", ERROR_TEXT_MAX_CHARS)
    text = (response.text or "").strip()
    if text and not text.startswith("<"):
        return truncate(f"{status}: {text}", ERROR_TEXT_MAX_CHARS)
    return f"{status}: {response.reason or 'no explanation given'}"


def json_body(response):
    """The response's JSON object, or None when it has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


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


def is_retryable_status(status):
    """408 (request timeout), 429 (slow down) and 5xx may pass later; other 4xx never will."""
    return status in (408, 429) or status >= 500


class HttpClient:
    """POSTs to a provider's web API with connect and read timeouts.

    One requests.Session per thread, so the dispatcher's worker threads keep their
    connections alive without sharing a session between threads. A request that never got
    an answer (refused, timed out) is a retryable SendResult naming the provider; an answer
    is classified by the ``classify`` function the channel passes.
    """

    def __init__(self, provider, connect_timeout, read_timeout):
        self.provider = provider
        self.timeout = (connect_timeout, read_timeout)
        self._local = threading.local()

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = "SendAuth-Dashboard"
        return session

    def post(self, url, classify, **kwargs):
        provider = self.provider
        try:
            response = self._session().post(url, timeout=self.timeout, **kwargs)
        except requests.ConnectTimeout:
            return SendResult("retryable", error=f"Could not connect to {provider} within "
                                                 f"{self.timeout[0]:g} s (timeout)")
        except requests.Timeout:
            return SendResult("retryable", error=f"{provider} did not answer within "
                                                 f"{self.timeout[1]:g} s (timeout)")
        except requests.ConnectionError:
            return SendResult("retryable", error=f"Could not connect to {provider} "
                                                 "(connection refused or network error)")
        except requests.RequestException as exc:
            return SendResult("retryable", error=f"Request to {provider} failed: "
                                                 f"{exc.__class__.__name__}")
        return classify(response)


class WebApiClient:
    """A provider's web API at a configurable base URL: ``<PREFIX>_API_URL`` and its timeouts."""

    provider = None
    config_prefix = None

    def __init__(self, base_url, connect_timeout, read_timeout):
        self.base_url = base_url.rstrip("/")
        self.http = HttpClient(self.provider, connect_timeout, read_timeout)

    @classmethod
    def from_config(cls, config):
        prefix = cls.config_prefix
        return cls(config[f"{prefix}_API_URL"], config[f"{prefix}_CONNECT_TIMEOUT"],
                   config[f"{prefix}_READ_TIMEOUT"])
