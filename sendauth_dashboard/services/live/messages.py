"""Events in words and as the JSON a live stream sends: the same on a page and in a stream,
with the markup a page shows for them drawn by the page's own templates."""
import re
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app, has_request_context
from sqlalchemy import select

from ... import channels
from ...core import event_kinds as kinds
from ...extensions import db
from ...models import Event, utcnow
from ...runtime import runtime
from ..requests import delivery_report, risks


def message_for(event, transaction=None, actor=None, *, recording=False):
    """The JSON-ready form of an event, as streams and pages see it.

    Transaction events carry a summary of the transaction (who, what, its state as of this
    event) and the ids that decide who may see it, and its markup (``fragments``); they never
    carry a secret or a token. ``recording``: the event is being written, not yet committed.
    """
    transaction = transaction if transaction is not None else event.transaction
    actor = actor if actor is not None else event.actor
    actor_name = actor.name if actor is not None else None
    message = {
        "id": event.id,
        "kind": event.kind,
        "at": event.created_at.isoformat(),
        "actor": actor_name,
        "text": describe(event.kind, event.data or {}, actor_name),
        "data": event.data or {},
    }
    if transaction is not None:
        status = (event.data or {}).get("status", transaction.status)
        message["transaction"] = {
            "id": transaction.public_id,
            "status": status,
            "requestor": transaction.requestor.name,
            "requestor_email": transaction.requestor.email,
            "requestor_id": transaction.requestor_id,
            "user": transaction.user.name,
            "user_email": transaction.user.email,
            "user_id": transaction.user_id,
            "message": transaction.message,
            "created_at": transaction.created_at.isoformat(),
            "expires_at": transaction.expires_at.isoformat(),
            "risks": risks.words((event.data or {}).get("risks", transaction.risks),
                                 transaction.user.name),
        }
        row = delivery_report.row_from_event(event.kind, event.data or {}, event.created_at,
                                             transaction.created_at)
        if row is not None:
            message["delivery"] = row.as_message()
        message["html"] = fragments(event, transaction, status, keep=not recording)
    return message


def fragments(event, transaction, status, keep=True):
    """The markup pages show for a transaction event, drawn by the macros the pages draw it
    with, so a row or a line that arrives live is the one a reload shows: ``row``, the
    transaction's row in the list; ``line``, the event's line in the timeline, or None when
    the timeline keeps none (a channel's retry after its first failure); ``outcome``, the
    large banner on the transaction's page, for the event that made it final (else None).

    Drawn once per event and process: where it is recorded, as of the event, then carried to
    every process in its message; a process that reads it from the table (a replay) draws it
    once for all its streams (``Runtime.fragments`` keeps the recent ones; not an event still
    being recorded: were it rolled back, SQLite could give its id again). Drawn for no
    one in particular: a macro sees no signed-in user, so its markup is the same for every
    watcher who may see the event."""
    drawn = runtime().fragments
    if keep and (kept := drawn.get(event.id)) is not None:
        return kept
    templates = current_app.jinja_env
    with nullcontext() if has_request_context() else current_app.test_request_context(
            base_url=current_app.config["BASE_URL"]):  # url_for needs a request
        row = templates.get_template("transactions/_row.html").module.row(
            transaction, status, utcnow())
        line = (templates.get_template("transactions/_timeline.html").module.line(event)
                if _worth_a_line(event) else None)
        outcome = (templates.get_template("transactions/_outcome.html").module.outcome(
            transaction, status, event) if event.kind in _FINAL_KINDS else None)
    drawing = {"row": str(row), "line": None if line is None else str(line),
               "outcome": None if outcome is None else str(outcome)}
    return drawn.keep(event.id, drawing) if keep else drawing


class Drawn:
    """The fragments of the last ``size`` events drawn in this process, by event id."""

    def __init__(self, size=2000):
        self.size = size
        self._kept = {}
        self._lock = threading.Lock()

    def get(self, event_id):
        return self._kept.get(event_id)

    def keep(self, event_id, fragments):
        with self._lock:
            self._kept[event_id] = fragments
            while len(self._kept) > self.size:
                del self._kept[next(iter(self._kept))]
        return fragments


_FINAL_KINDS = frozenset(kinds.TRANSACTION_BECAME.values())


def _worth_a_line(event):
    """``delivery_report.worth_a_line`` for one event, given the events before it."""
    if event.kind != kinds.DELIVERY_RETRYING:
        return True
    with db.session.no_autoflush:  # also called while the event's row is being flushed
        earlier = db.session.scalars(
            select(Event).where(Event.transaction_id == event.transaction_id,
                                Event.kind == event.kind, Event.id < event.id)).all()
    return delivery_report.worth_a_line([*earlier, event])[-1] is event


def describe(kind, data, actor_name=None):
    """One line for an event: a transaction's timeline (the same on the page and in the live
    stream) or the audit log; its times in UTC. A kind with no words is named in words made
    from its name ("user.enrolment_link_issued": "Enrolment link issued"), never as a code."""
    return "".join(part if isinstance(part, str) else part.text
                   for part in describe_parts(kind, data, actor_name))


@dataclass(frozen=True)
class Moment:
    """A time an event's words name: ``at`` (aware, or None when unreadable) and ``text``,
    its words in UTC. A page shows it in the reader's zone (pages/formatting.py)."""

    at: datetime | None
    text: str


def describe_parts(kind, data, actor_name=None):
    """The words of ``describe``, as text and the ``Moment`` of each time they name."""
    words = WORDS.get(kind)
    line = words(Told(actor_name or "Someone", data)) if words else kind_words(kind)
    parts = _MOMENT.split(line)
    return [part if n % 3 == 0 else Moment(_parsed(part), parts[n + 1])
            for n, part in enumerate(parts) if n % 3 != 2]


def kind_words(kind):
    """A kind's name in words: "user.enrolment_link_issued" is "Enrolment link issued", and
    "approval_group.created" (one word after the dot) "Approval group created"."""
    subject, _, what = kind.rpartition(".")
    words = what if "_" in what or not subject else f"{subject} {what}"
    words = words.replace("_", " ").strip() or kind
    return words[:1].upper() + words[1:]


# Where words name a time: ``\ue000<ISO 8601>\ue001<the time in UTC>\ue002`` (private-use
# characters, never in what people type into a form field that ends up here as a time).
_MOMENT = re.compile("\ue000([^\ue001\ue002]*)\ue001([^\ue000\ue002]*)\ue002")


def _moment(iso, text):
    return f"\ue000{iso}\ue001{text}\ue002"


def _parsed(iso):
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Told:
    """What an event's words are made of: who did it (``who``) and its data (``told["x"]``
    is ``data.get("x")``)."""

    who: str
    data: dict

    def __getitem__(self, key):
        return self.data.get(key)

    @property
    def channel(self):
        return channels.label(self["channel"])

    @property
    def attempt(self):
        return f"attempt {self['attempt']}" if self["attempt"] else ""

    @property
    def changes(self):
        return "; ".join(str(c) for c in self["changes"] or [])

    @property
    def resolving(self):
        """A delivery that resolves PagerDuty's incident rather than notifying the user."""
        return self["action"] == "resolve"

    def error_tail(self):
        """``: <the error>`` when there is one."""
        return f": {self['error']}" if self["error"] else ""


PROOF_WORDS = {"passkey": "with a passkey", "password": "by entering their password again"}


def _created(t):
    via = ", ".join(channels.label(c) for c in t["channels"] or [])
    how = [f"with the API key {t['api_key']}"] if t["api_key"] else []
    how += [f"for ticket {t['ticket']}"] if t["ticket"] else []
    return f"{t.who} sent the request" + (f" through {via}" if via else "") + \
        (f" ({', '.join(how)})" if how else "")


def _verified(t):
    how = PROOF_WORDS.get(t["proof"])
    return f"{t.who} verified it" + (f" {how}" if how else "")


def _denied(t):
    if t["reason"] == "wrong_code":
        return f"Denied: {t.who} entered a wrong code"
    return f"{t.who} denied it"


def _passkey_used(t):
    used = f"{t.who} proved it is them with the passkey {t['name']!r}"
    if t["new"]:
        used += (f", registered less than a day before ({_when(t['registered_at'])}): ask "
                 "them whether they added it")
    return used


def _delivery_sent(t):
    if t.resolving:
        return f"{t.channel} accepted the resolve of the incident ({t.attempt}, HTTP " \
               f"{t['http_status']})"
    return delivery_report.accepted_words(t["channel"], t["http_status"], t["attempt"])


def _delivery_retrying(t):
    doing = "resolving the incident, " if t.resolving else ""
    return (f"{t.channel}: {doing}{t.attempt} failed ({t['error']}); trying again at "
            f"{_clock(t['next_attempt_at'])}")


def _delivery_failed(t):
    if t.resolving:
        return f"{t.channel}: resolving the incident failed: {t['error']}"
    return f"{t.channel}: the notification failed: {t['error']}"


def _delivery_cancelled(t):
    if t.resolving:
        return f"{t.channel}: the incident was not resolved: {t['reason']}"
    return f"{t.channel}: not sent: {t['reason']}"


def _resolve_requested(t):
    if t["automatic"]:
        return "Asked PagerDuty to resolve the incident: the request is final"
    return f"{t.who} asked PagerDuty to resolve the incident"


# PagerDuty's incident events: what happened, to whom, by whom ("Acknowledged in PagerDuty by
# Alex Oncall"), and what follows.
INCIDENT_WORDS = {
    kinds.PAGERDUTY_TRIGGERED: ("Incident opened in PagerDuty", ""),
    kinds.PAGERDUTY_ACKNOWLEDGED: ("Acknowledged in PagerDuty", ""),
    kinds.PAGERDUTY_UNACKNOWLEDGED: ("Unacknowledged in PagerDuty", ": nobody holds it now"),
    kinds.PAGERDUTY_REASSIGNED: ("Reassigned in PagerDuty", ""),
    kinds.PAGERDUTY_ESCALATED: ("Escalated in PagerDuty", ""),
    kinds.PAGERDUTY_RESOLVED: ("Resolved in PagerDuty", ""),
    kinds.PAGERDUTY_REOPENED: ("Reopened in PagerDuty", ""),
    kinds.PAGERDUTY_ANNOTATED: ("Note added in PagerDuty", ""),
}


def _incident(kind):
    def words(t):
        said, after = INCIDENT_WORDS[kind]
        if t["assignees"]:
            said += f" to {', '.join(t['assignees'])}"
        if t["agent"]:
            said += f" by {t['agent']}"
        if t["note"]:
            after = f": {t['note']}"
        return said + after

    return words


def _enrolment_link_issued(t):
    what = "an invitation" if t["kind"] == "invitation" else "a passkey enrolment link"
    return f"{t.who} issued {what} for {t['email']}" + \
        (", which resets their passkeys" if t["reset"] else "")


def _enrolled(t):
    through = "their invitation" if t["kind"] == "invitation" else "an enrolment link"
    return f"{t.who} registered the passkey {t['passkey']!r} through {through}" + \
        ("; their other passkeys were removed" if t["reset"] else "")


def _settings_changed(label):
    return lambda t: f"{t.who} changed the {label} settings: {t.changes}"


def _settings_tested(label, did):
    def words(t):
        line = f"{t.who} {did} through {label}: {t['outcome'] or 'sent'}"
        if t["http_status"]:
            line += f" (HTTP {t['http_status']})"
        return line + t.error_tail()

    return words


# Each kind's words (CTFd's DECAY_FUNCTIONS: a table, not a chain of ifs).
WORDS = {
    kinds.TRANSACTION_CREATED: _created,
    kinds.TRANSACTION_VERIFIED: _verified,
    kinds.TRANSACTION_DENIED: _denied,
    kinds.TRANSACTION_CANCELLED: lambda t: f"{t.who} cancelled the request",
    kinds.TRANSACTION_EXPIRED: lambda t: "Expired without an answer",
    kinds.VERIFICATION_REFUSED: lambda t: f"{t.who} could not verify: {t['reason']}",
    kinds.PASSKEY_USED: _passkey_used,
    kinds.BINDING_WRONG_PICK: lambda t: (f"{t.who} picked a wrong code, {t['picked']} "
                                         f"({t['picks']} of {t['limit']} allowed)"),
    kinds.DELIVERY_SENT: _delivery_sent,
    kinds.DELIVERY_RETRYING: _delivery_retrying,
    kinds.DELIVERY_FAILED: _delivery_failed,
    kinds.DELIVERY_CANCELLED: _delivery_cancelled,
    **{kind: _incident(kind) for kind in INCIDENT_WORDS},
    kinds.PAGERDUTY_RESOLVE_REQUESTED: _resolve_requested,
    kinds.USER_CREATED: lambda t: f"{t.who} created the account {t['email']} as {t['role']}",
    kinds.USER_ROLE_CHANGED: lambda t: (f"{t.who} changed the role of {t['email']} from "
                                        f"{t['from']} to {t['to']}"),
    kinds.USER_DEACTIVATED: lambda t: f"{t.who} deactivated {t['email']}",
    kinds.API_KEY_CREATED: lambda t: (f"{t.who} created the API key {t['name']} "
                                      f"({t['prefix']}…) of {t['email']} with "
                                      f"{', '.join(t['scopes'] or [])}, until "
                                      f"{_when(t['expires_at'])}"),
    kinds.API_KEY_REVOKED: lambda t: (f"{t.who} revoked the API key {t['name']} "
                                      f"({t['prefix']}…) of {t['email']}"),
    kinds.USER_REACTIVATED: lambda t: f"{t.who} reactivated {t['email']}",
    kinds.USER_PASSWORD_CHANGED: lambda t: f"{t.who} set a new password for {t['email']}",
    kinds.USER_PASSWORD_SET: lambda t: (f"An operator set a new password for {t['email']} "
                                        "(ensure-admin)"),
    kinds.USER_ENROLMENT_LINK_ISSUED: _enrolment_link_issued,
    kinds.USER_ENROLLED: _enrolled,
    kinds.USER_SIGNED_IN: lambda t: f"{t.who} signed in with {t['method']}",
    kinds.PASSKEY_REGISTERED: lambda t: f"{t.who} registered the passkey {t['name']!r}",
    kinds.PASSKEY_REMOVED: lambda t: f"{t.who} removed the passkey {t['name']!r}",
    kinds.PROFILE_MESSAGING_CHANGED: lambda t: (f"{t.who} changed their messaging "
                                                f"preferences: {t.changes}"),
    kinds.PROFILE_CHANGE_ANNOUNCED: lambda t: (f"Telling {t.who} of the change through "
                                               f"{t.channel}: {t['outcome']}{t.error_tail()}"),
    kinds.WEBHOOK_ENDPOINT_CREATED: lambda t: f"{t.who} added the webhook endpoint {t['url']}",
    kinds.WEBHOOK_ENDPOINT_CHANGED: lambda t: (f"{t.who} changed the webhook endpoint "
                                               f"{t['url']}: {t.changes}"),
    kinds.WEBHOOK_SECRET_ROTATED: lambda t: (f"{t.who} rotated the secret of the webhook "
                                             f"endpoint {t['url']}; the old one signs until "
                                             f"{_when(t['old_until'])}"),
    kinds.WEBHOOK_ENDPOINT_DELETED: lambda t: f"{t.who} deleted the webhook endpoint {t['url']}",
    kinds.WEBHOOK_ENDPOINT_DISABLED: lambda t: (f"The webhook endpoint {t['url']} was turned "
                                                f"off: {t['reason']}"),
    kinds.SETTINGS_ORGANISATION_CHANGED: lambda t: (f"{t.who} changed the organisation's "
                                                    f"rules: {t.changes}"),
    **{kind: words for name in channels.names() for kind, words in zip(
        kinds.of_channel(name),
        (_settings_changed(channels.label(name)),
         _settings_tested(channels.label(name), "sent a test"),
         _settings_tested(channels.label(name), "resolved a test")), strict=True)},
}


def incident_link_text(data):
    """"incident #12": the words of the link to PagerDuty's incident beside an event."""
    return f"incident #{data['number']}" if data.get("number") else "the incident"


def _when(iso):
    return _moment(iso, f"{iso[:10]} {iso[11:16]} UTC") if iso else "a recent time"


def _clock(iso):
    return _moment(iso, iso[11:19] + " UTC") if iso else "a later time"
