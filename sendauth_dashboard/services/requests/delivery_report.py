"""How a transaction's notifications went, as people read it: one row per channel (its state,
attempts, what the provider last answered in words, how long it took to be accepted, the next
retry), the same on the page and in the live stream; and which delivery events are worth a line
in the timeline (each channel's first failure and its outcome, not every retry).
"""
from dataclasses import asdict, dataclass
from datetime import datetime
from http import HTTPStatus

from ... import channels
from ...core import event_kinds as kinds

STATE_WORDS = {"queued": "Waiting to send", "sending": "Sending", "sent": "Accepted",
               "failed": "Failed", "cancelled": "Not sent"}
# What the provider's "yes" means for each channel.
ACCEPTED_WORDS = {
    "pagerduty": "PagerDuty accepted the notification",
    "email": "The mail server accepted the email",
    "sms": "Twilio accepted the text message",
    "slack": "Slack delivered the direct message",
}
EVENT_STATES = {kinds.DELIVERY_SENT: "sent", kinds.DELIVERY_RETRYING: "queued",
                kinds.DELIVERY_FAILED: "failed", kinds.DELIVERY_CANCELLED: "cancelled"}


def http_words(status):
    """``HTTP 202 Accepted``; empty when the channel does not speak HTTP (email)."""
    if not status:
        return ""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def accepted_words(channel, http_status=None, attempt=None):
    """"PagerDuty accepted the notification (HTTP 202 Accepted, attempt 2)"."""
    words = ACCEPTED_WORDS.get(channel, f"{channels.label(channel)} accepted it")
    details = [d for d in (http_words(http_status),
                           f"attempt {attempt}" if attempt and attempt > 1 else "") if d]
    return words + (f" ({', '.join(details)})" if details else "")


@dataclass(frozen=True)
class DeliveryRow:
    channel: str
    label: str
    state: str
    state_words: str
    attempts: int
    answer: str
    took: str  # from queued to accepted
    next_retry_at: datetime | None
    # A group request's notification: the member it went to, and the row's key (the channel,
    # then the member's id) that live updates find it by.
    member: str = ""
    key: str = ""

    def as_message(self):
        """JSON-ready, for the live stream."""
        row = asdict(self)
        row["next_retry_at"] = self.next_retry_at.isoformat() if self.next_retry_at else None
        return row


def duration_words(seconds):
    """"0.4 s", "12 s", "3 min 05 s"; empty for None."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    return f"{whole // 60} min {whole % 60:02d} s"


def _row(channel, state, attempts, answer, seconds, next_retry_at, member=(None, None)):
    member_id, name = member
    return DeliveryRow(channel, channels.label(channel), state,
                       STATE_WORDS.get(state, state), attempts, answer,
                       duration_words(seconds), next_retry_at, name or "",
                       f"{channel}.{member_id}" if member_id else channel)


def rows(transaction):
    """One row per channel, from the outbox (its notifications: a resolve after review shows
    on the timeline)."""
    shown = []
    for delivery in transaction.deliveries:
        if delivery.action != "notify":
            continue
        if delivery.status == "sent":
            answer = accepted_words(delivery.channel, delivery.last_http_status)
            seconds = (delivery.completed_at - delivery.created_at).total_seconds()
        else:
            answer = delivery.last_error or ("No answer yet" if delivery.attempts else "")
            seconds = None
        retry = delivery.next_attempt_at if delivery.status == "queued" and delivery.attempts \
            else None
        member = (delivery.user_id, delivery.user.name) if delivery.user_id else (None, None)
        shown.append(_row(delivery.channel, delivery.status, delivery.attempts, answer, seconds,
                          retry, member))
    return shown


def row_from_event(kind, data, at, transaction_created_at):
    """The channel's row as a delivery event leaves it (for pages updating live)."""
    state = EVENT_STATES.get(kind)
    if state is None or not data.get("channel") or data.get("action", "notify") != "notify":
        return None
    channel = data["channel"]
    if state == "sent":
        answer = accepted_words(channel, data.get("http_status"))
        seconds = (at - transaction_created_at).total_seconds()
    else:
        answer = data.get("error") or data.get("reason") or ""
        seconds = None
    retry = data.get("next_attempt_at")
    return _row(channel, state, data.get("attempt") or 0, answer, seconds,
                datetime.fromisoformat(retry) if retry else None,
                (data.get("member_id"), data.get("member")))


def worth_a_line(events):
    """The timeline's events: all but a channel's retries after its first failure."""
    failed_once = set()
    kept = []
    for event in events:
        channel = (event.data or {}).get("channel")
        if event.kind == kinds.DELIVERY_RETRYING:
            if channel in failed_once:
                continue
            failed_once.add(channel)
        kept.append(event)
    return kept
