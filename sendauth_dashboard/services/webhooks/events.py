"""Which events become webhooks, what their payloads say, and how they are queued.

Every event is an Event row written with its change (``core.event_log``). ``install`` hooks
the database session once: when a flush writes Event rows of a kind that webhooks carry, one
message per subscribed endpoint is inserted in the same database transaction. So a webhook is
queued exactly when its event commits, and never for a change rolled back; the sender is woken
after the commit.

A payload is ``{"type", "timestamp", "data"}``: the API's fields for a transaction or a user
(ids, status, user, requestor, ticket, who answered and how, risk signals), under 20 KB. It
never holds the call-binding code, an answer link or any token.
"""
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ...core import after_commit
from ...core import event_kinds as kinds
from ...models import Event, User, WebhookEndpoint, WebhookMessage
from .payloads import message_row, payload, transaction_data, user_data
from .sender import wake

_NEW_EVENTS = "sendauth_webhook_events"

# The event kinds webhooks carry, and the webhook type each becomes.
TYPE_OF_KIND = {
    kinds.TRANSACTION_CREATED: "transaction.created",
    kinds.TRANSACTION_VERIFIED: "transaction.verified",
    kinds.TRANSACTION_DENIED: "transaction.denied",
    kinds.TRANSACTION_CANCELLED: "transaction.cancelled",
    kinds.TRANSACTION_EXPIRED: "transaction.expired",
    kinds.USER_CREATED: "user.created",
    kinds.USER_DEACTIVATED: "user.deactivated",
    kinds.PASSKEY_REGISTERED: "user.passkey_added",
    kinds.USER_ENROLLED: "user.passkey_added",
    kinds.PASSKEY_REMOVED: "user.passkey_removed",
    kinds.PROFILE_MESSAGING_CHANGED: "user.contact_changed",
}
# A channel's final failure may leave a transaction that no channel reached.
_DELIVERY_ENDINGS = (kinds.DELIVERY_FAILED, kinds.DELIVERY_CANCELLED)


def _subject_of(session, event):
    """The user a user.* event is about: its actor, or the account named by its email."""
    if event.kind in (kinds.USER_CREATED, kinds.USER_DEACTIVATED):
        email = (event.data or {}).get("email")
        return session.scalar(select(User).where(User.email == email))
    return event.actor


def _type_of(event):
    """The webhook type ``event`` may become (cheap: nothing loaded), or None."""
    if event.kind in _DELIVERY_ENDINGS:
        return "transaction.undeliverable"
    return TYPE_OF_KIND.get(event.kind)


def _data_for(session, event, event_type):
    """What the webhook of ``event`` says; None when it is not one after all."""
    if event_type == "transaction.undeliverable":
        reached = event.transaction is None or (event.data or {}).get("action") is not None \
            or not _unreached(event.transaction)
        return None if reached else transaction_data(event.transaction)
    if event_type.startswith("transaction."):
        return transaction_data(event.transaction, event)
    user = _subject_of(session, event)
    return None if user is None else user_data(user, event)


def _unreached(transaction):
    notes = [d for d in transaction.deliveries if d.action == "notify"]
    return bool(notes) and all(d.status in ("failed", "cancelled") for d in notes)


def _collect(session, flush_context, instances):
    found = [o for o in session.new if isinstance(o, Event)
             and (o.kind in TYPE_OF_KIND or o.kind in _DELIVERY_ENDINGS)]
    if found:
        session.info.setdefault(_NEW_EVENTS, []).extend(found)


def _queue(session, flush_context):
    """After the flush wrote the events (ids, rows in place): one message per endpoint."""
    found = session.info.pop(_NEW_EVENTS, None)
    if not found:
        return
    endpoints = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.enabled)).all()
    if not endpoints:
        return
    rows = []
    for event in found:
        event_type = _type_of(event)
        wanting = [e.id for e in endpoints if e.wants(event_type)]
        data = _data_for(session, event, event_type) if wanting else None
        if data is not None:
            body = payload(event_type, data, event.created_at)
            rows += [message_row(endpoint_id, event_type, body) for endpoint_id in wanting]
    if rows:
        session.execute(insert(WebhookMessage), rows)
        # The flushing session's own list (after_commit.later names the app's scoped one).
        session.info.setdefault(after_commit.CALLBACKS, []).append((wake, ()))


_HOOKS = (("before_flush", _collect), ("after_flush_postexec", _queue))


def install():
    """Hook every database session (once per process)."""
    for name, hook in _HOOKS:
        if not sa_event.contains(Session, name, hook):
            sa_event.listen(Session, name, hook)
