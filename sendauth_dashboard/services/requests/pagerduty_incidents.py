"""PagerDuty's side of a request: its incident as PagerDuty's V3 webhooks tell it, and
resolving it after review.

A webhook (verified by its signature in the view) names the incident by ``data.incident_key``,
the dedup_key SendAuth sent: the transaction's public id. Each incident event goes on the
transaction's timeline in words, live, and ``PagerDutyIncident`` keeps the state to show
(triggered, acknowledged by whom, resolved). PagerDuty never changes the request's own status.

Resolving is a PagerDuty delivery with the action "resolve" (services.outbox): a reviewer asks
for it on a finished request, or the organisation's setting asks for it when the request
becomes final.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

from ...core import after_commit, event_log, json_input
from ...core import event_kinds as kinds
from ...core.errors import ServiceError
from ...extensions import db
from ...models import (
    FINAL_TRANSACTION_STATES,
    Delivery,
    PagerDutyIncident,
    Transaction,
    WebhookReceipt,
    utcnow,
)
from ..outbox import deliveries
from ..reports import organisation

CHANNEL = "pagerduty"
# The incident events shown on a timeline, and the state each one leaves the incident in
# (None: the state stays as it was).
EVENT_TYPES = {
    "incident.triggered": "triggered",
    "incident.acknowledged": "acknowledged",
    "incident.unacknowledged": "triggered",
    "incident.reassigned": None,
    "incident.escalated": None,
    "incident.resolved": "resolved",
    "incident.reopened": "triggered",
    "incident.annotated": None,
}
# PagerDuty retries a webhook for up to 48 hours; ids are kept a day longer than that.
RECEIPTS_KEPT = timedelta(hours=72)
WEBHOOK_ID_MAX_CHARS = 128
# PagerDuty's webhooks are a few KiB; the request body limit (MAX_CONTENT_LENGTH) is 64 KiB.
WEBHOOK_MAX_CHARS = 64 * 1024
NAME_MAX_CHARS = 200
NOTE_MAX_CHARS = 500


class WebhookError(ServiceError):
    """The body is not a V3 webhook; the message says what is wrong."""


def parse(raw):
    """The ``event`` object of a V3 webhook body (bytes); WebhookError if it is not one. Its
    ``id`` is required: it is what a replay is known by (the signature covers the body, not
    the X-Webhook-Id header)."""
    try:
        body = json_input.parse(raw, max_chars=WEBHOOK_MAX_CHARS, what="The body")
    except json_input.JsonError as exc:
        raise WebhookError(str(exc)) from None
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
        raise WebhookError("The body has no event with an event_type (a V3 webhook has).")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= WEBHOOK_ID_MAX_CHARS:
        raise WebhookError(f"The event has no id of 1 to {WEBHOOK_ID_MAX_CHARS} characters "
                           "(a V3 webhook's event has one).")
    return event


@dataclass(frozen=True)
class Received:
    """What became of a webhook: ``recorded`` on a timeline, or why not."""

    recorded: bool
    reason: str


def receive(event, now=None):
    """Take in one verified webhook's ``event`` (from ``parse``), in the current database
    transaction (uncommitted).

    An event id seen before is ignored, whatever X-Webhook-Id came with it; so are events
    SendAuth does not show and incidents that are not a request's (another service's, or a
    test incident).
    """
    now = now or utcnow()
    prune_receipts(now)
    if not _first_receipt(event["id"], now):
        return Received(False, "already received")
    event_type = event["event_type"]
    if event_type not in EVENT_TYPES:
        return Received(False, f"{event_type[:64]} is not shown")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    transaction, incident = _match(event_type, data)
    if transaction is None:
        return Received(False, "no request has this incident")
    details = _incident_details(event_type, data)
    occurred_at = _time(event.get("occurred_at")) or now
    agent = _name(event.get("agent"))
    incident = _apply(transaction, incident, event_type, details, agent, occurred_at)
    record = {"event_type": event_type, "incident_state": state_words(incident)}
    if agent:
        record["agent"] = agent
    for name in ("number", "html_url"):
        value = details.get(name) or getattr(incident, name)
        if value:
            record[name] = value
    assignees = [n for n in map(_name, data.get("assignees") or []) if n]
    if assignees and event_type in ("incident.reassigned", "incident.escalated"):
        record["assignees"] = assignees[:10]
    if event_type == "incident.annotated" and isinstance(data.get("content"), str):
        record["note"] = data["content"][:NOTE_MAX_CHARS]
    event_log.record(kinds.PAGERDUTY_WEBHOOK[event_type], transaction=transaction, data=record)
    return Received(True, "recorded")


def prune_receipts(now):
    """Forget webhook ids older than RECEIPTS_KEPT (uncommitted); returns how many."""
    return db.session.execute(delete(WebhookReceipt).where(
        WebhookReceipt.received_at < now - RECEIPTS_KEPT)).rowcount


def _first_receipt(webhook_id, now):
    """Note the webhook id; False when it was noted before (by us or a racing request)."""
    insert = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}[
        db.session.get_bind().dialect.name]
    inserted = db.session.scalar(insert(WebhookReceipt).values(
        webhook_id=webhook_id, received_at=now).on_conflict_do_nothing(
        index_elements=["webhook_id"]).returning(WebhookReceipt.id))
    return inserted is not None


def _match(event_type, data):
    """The transaction (and what is known of its incident) an event is about, or (None, None).

    Incident events carry ``incident_key``; a note (incident.annotated) carries only a
    reference to the incident, known here from an earlier event.
    """
    key = data.get("incident_key")
    if isinstance(key, str) and 0 < len(key) <= 32:
        transaction = db.session.scalar(select(Transaction).where(Transaction.public_id == key))
        if transaction is not None:
            return transaction, db.session.get(PagerDutyIncident, transaction.id)
    reference = data.get("incident") if event_type == "incident.annotated" else None
    incident_id = reference.get("id") if isinstance(reference, dict) else None
    if isinstance(incident_id, str) and incident_id:
        incident = db.session.scalar(select(PagerDutyIncident).where(
            PagerDutyIncident.incident_id == incident_id[:64]))
        if incident is not None:
            return db.session.get(Transaction, incident.transaction_id), incident
    return None, None


def _incident_details(event_type, data):
    if event_type == "incident.annotated":
        data = data.get("incident") if isinstance(data.get("incident"), dict) else {}
    details = {}
    if isinstance(data.get("id"), str):
        details["incident_id"] = data["id"][:64]
    if isinstance(data.get("number"), int) and not isinstance(data.get("number"), bool):
        details["number"] = data["number"]
    url = data.get("html_url")
    # Shown as a link: only a web address, never javascript: or the like.
    if isinstance(url, str) and url.startswith("https://") and len(url) <= 500:
        details["html_url"] = url
    return details


def _apply(transaction, incident, event_type, details, agent, occurred_at):
    state = EVENT_TYPES[event_type]
    if incident is None:
        incident = PagerDutyIncident(transaction_id=transaction.id, state=state or "triggered",
                                     changed_at=occurred_at)
        db.session.add(incident)
        # The transaction's (view-only) relationship was read as None: what is drawn of the
        # event (its row, live) shows the incident.
        set_committed_value(transaction, "pagerduty_incident", incident)
        newer = True
    else:
        newer = occurred_at >= incident.changed_at
    for name, value in details.items():
        setattr(incident, name, value)
    if state and newer:
        incident.state = state
        incident.changed_at = occurred_at
        incident.acknowledged_by = agent if state == "acknowledged" else None
    return incident


def state_words(incident):
    """"triggered", "acknowledged by Alex Oncall", "resolved": as pages show it."""
    if incident is None:
        return None
    if incident.state == "acknowledged" and incident.acknowledged_by:
        return f"acknowledged by {incident.acknowledged_by}"
    return incident.state


def _name(reference):
    """A person's (or an integration's) name as PagerDuty gives it in a reference."""
    if isinstance(reference, dict) and isinstance(reference.get("summary"), str):
        return reference["summary"].strip()[:NAME_MAX_CHARS] or None
    return None


def _time(value):
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


# -- resolving --------------------------------------------------------------------------------

def _trigger_sent(transaction):
    return db.session.scalar(select(Delivery.id).where(
        Delivery.transaction_id == transaction.id, Delivery.channel == CHANNEL,
        Delivery.action == "notify", Delivery.status.in_(("sent", "sending")))) is not None


def _resolve_under_way(transaction):
    return db.session.scalar(select(Delivery.status).where(
        Delivery.transaction_id == transaction.id, Delivery.channel == CHANNEL,
        Delivery.action == "resolve", Delivery.status.in_(("queued", "sending", "sent"))))


def why_not_resolvable(transaction, status):
    """Why the request's incident cannot be resolved from here now (``status`` is its
    effective status), or None when it can."""
    if status not in FINAL_TRANSACTION_STATES:
        return "The request is still pending: resolve its incident once it is answered"
    return incident_problem(transaction)


def incident_problem(transaction):
    """Why there is no incident of the request to resolve from here, whatever its status,
    or None."""
    if not _trigger_sent(transaction):
        return "No PagerDuty incident was opened for this request"
    incident = transaction.pagerduty_incident
    if incident is not None and incident.state == "resolved":
        return "PagerDuty says the incident is resolved already"
    under_way = _resolve_under_way(transaction)
    if under_way == "sent":
        return "PagerDuty has accepted the resolve already"
    if under_way:
        return "The resolve is on its way to PagerDuty"
    return None


def request_resolve(transaction, status, *, actor):
    """A reviewer asks PagerDuty to resolve the request's incident: queued in the outbox with
    its event, in the current database transaction. Returns why not (words), or None."""
    reason = why_not_resolvable(transaction, status)
    if reason:
        return reason
    _queue_resolve(transaction, actor, automatic=False)
    return None


def resolve_when_final(transaction):
    """The organisation's setting: a request that just became final has its incident
    resolved. Called in the database transaction that made it final."""
    if not organisation.settings().resolve_pagerduty_incidents or not _trigger_sent(transaction):
        return
    _queue_resolve(transaction, None, automatic=True)


def _queue_resolve(transaction, actor, *, automatic):
    if deliveries.enqueue_resolve(transaction, CHANNEL) is None:
        return
    after_commit.later(deliveries.wake)
    event_log.record(kinds.PAGERDUTY_RESOLVE_REQUESTED, transaction=transaction, actor=actor,
                     data={"automatic": automatic})
