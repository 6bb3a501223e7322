"""The event log and the broker that feeds live streams.

``record`` adds an Event to the current database transaction. Once that transaction commits,
the event is published to the broker; if it rolls back, nothing is published. So a watcher
never sees an event that is not in the table, and the table is where a reconnecting watcher
catches up from.
"""
import logging
import queue
import threading

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Event

log = logging.getLogger(__name__)

_PENDING = "sendauth_pending_events"
_READY = "sendauth_ready_events"


def record(kind, *, transaction=None, actor=None, data=None):
    """Add an event to the current database transaction; it is published after commit."""
    event = Event(
        kind=kind,
        transaction=transaction,
        actor=actor,
        data=dict(data or {}),
    )
    db.session.add(event)
    db.session.info.setdefault(_PENDING, []).append(event)
    return event


def message_for(event, transaction=None, actor=None):
    """The JSON-ready form of an event, as streams and pages see it.

    Transaction events carry a summary of the transaction (who, what, its state as of this
    event) and the ids that decide who may see it; they never carry a secret or a token.
    """
    transaction = transaction if transaction is not None else event.transaction
    actor = actor if actor is not None else event.actor
    message = {
        "id": event.id,
        "kind": event.kind,
        "at": event.created_at.isoformat(),
        "actor": actor.name if actor is not None else None,
        "data": event.data or {},
    }
    if transaction is not None:
        message["transaction"] = {
            "id": transaction.public_id,
            "status": (event.data or {}).get("status", transaction.status),
            "requestor": transaction.requestor.name,
            "requestor_id": transaction.requestor_id,
            "user": transaction.user.name,
            "user_email": transaction.user.email,
            "user_id": transaction.user_id,
            "message": transaction.message,
            "created_at": transaction.created_at.isoformat(),
            "expires_at": transaction.expires_at.isoformat(),
        }
    return message


@sa_event.listens_for(Session, "after_flush_postexec")
def _collect_flushed_events(session, flush_context):
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    ready = session.info.setdefault(_READY, [])
    for event in pending:
        ready.append(message_for(event, event.transaction, event.actor))


@sa_event.listens_for(Session, "after_commit")
def _publish_committed_events(session):
    ready = session.info.pop(_READY, None)
    if not ready:
        return
    broker = _broker_of_session()
    if broker is None:
        return
    for message in ready:
        broker.publish(message)


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back_events(session, previous_transaction):
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_READY, None)


def _broker_of_session():
    from flask import current_app

    try:
        return current_app.extensions.get("sendauth_broker")
    except RuntimeError:
        return None


class Subscription:
    """One watcher's bounded queue. When it overflows, the watcher reloads from the table."""

    def __init__(self, size):
        self.queue = queue.Queue(maxsize=size)
        self.overflowed = False

    def put(self, message):
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            self.overflowed = True

    def get(self, timeout):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


class LocalBroker:
    """Fans events out to the watchers of this process."""

    def __init__(self, queue_size=1000):
        self.queue_size = queue_size
        self._subscribers = set()
        self._lock = threading.Lock()

    def subscribe(self):
        subscription = Subscription(self.queue_size)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription):
        with self._lock:
            self._subscribers.discard(subscription)

    @property
    def subscriber_count(self):
        return len(self._subscribers)

    def publish(self, message):
        self.fan_out(message)

    def fan_out(self, message):
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            subscription.put(message)
