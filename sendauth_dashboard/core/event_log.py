"""The event log: every change worth telling is an Event row, written with the change.

``record`` adds an Event to the current database transaction. Once that transaction commits,
the event is published to the broker (``core.after_commit``); if it rolls back, nothing
is. So a watcher never sees an event that is not in the table, and the table is where a
reconnecting watcher catches up from.
"""
from sqlalchemy import func, select

from ..extensions import db
from ..models import Event

# The session's events recorded since its last flush: after_commit turns them into messages.
PENDING = "sendauth_pending_events"
# Their messages, ready to publish once the database transaction commits.
READY = "sendauth_ready_events"


# Held from a database transaction's first event until it commits (PostgreSQL): event ids
# then commit in the order they were given, so a watcher resuming "after id N" can never
# miss an id below N that committed later. SQLite has one writer at a time and needs nothing.
EVENT_ORDER_LOCK = 0x5E4DA117


def take_order_lock():
    """Take the event-order lock now (PostgreSQL), ahead of its first event: for a writer of
    rows that every writer of events shares (services.reports.tallies), so that no database
    transaction holds such a row while it waits for this lock, against one that holds this
    lock and waits for the row."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(EVENT_ORDER_LOCK)))


def record(kind, *, transaction=None, actor=None, data=None):
    """Add an event to the current database transaction; it is published after commit."""
    info = db.session.info
    if not info.get(PENDING) and not info.get(READY) and \
            db.session.get_bind().dialect.name == "postgresql":
        # Taking the lock autoflushes: look up the pending list only after it.
        db.session.execute(select(func.pg_advisory_xact_lock(EVENT_ORDER_LOCK)))
    event = Event(
        kind=kind,
        transaction=transaction,
        actor=actor,
        data=dict(data or {}),
    )
    db.session.add(event)
    info.setdefault(PENDING, []).append(event)
    return event


def latest_event_id():
    return db.session.scalar(select(func.max(Event.id))) or 0
