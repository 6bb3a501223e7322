"""The event log and the broker that feeds live streams.

``record`` adds an Event to the current database transaction. Once that transaction commits,
the event is published to the broker; if it rolls back, nothing is published. So a watcher
never sees an event that is not in the table, and the table is where a reconnecting watcher
catches up from.
"""
import json
import logging
import time
from dataclasses import dataclass

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from ..extensions import db
from ..models import CHANNEL_LABELS, Event, Transaction
from . import delivery_report
from .broker import CLOSE, RESYNC

log = logging.getLogger(__name__)

_PENDING = "sendauth_pending_events"
_READY = "sendauth_ready_events"


# Held from a transaction's first event until it commits (PostgreSQL): event ids then commit
# in the order they were given, so a watcher resuming "after id N" can never miss an id below
# N that committed later. SQLite has one writer at a time and needs nothing.
EVENT_ORDER_LOCK = 0x5E4DA117


def record(kind, *, transaction=None, actor=None, data=None):
    """Add an event to the current database transaction; it is published after commit."""
    info = db.session.info
    if not info.get(_PENDING) and not info.get(_READY) and \
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
    info.setdefault(_PENDING, []).append(event)
    return event


def message_for(event, transaction=None, actor=None):
    """The JSON-ready form of an event, as streams and pages see it.

    Transaction events carry a summary of the transaction (who, what, its state as of this
    event) and the ids that decide who may see it; they never carry a secret or a token.
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
        message["transaction"] = {
            "id": transaction.public_id,
            "status": (event.data or {}).get("status", transaction.status),
            "requestor": transaction.requestor.name,
            "requestor_email": transaction.requestor.email,
            "requestor_id": transaction.requestor_id,
            "user": transaction.user.name,
            "user_email": transaction.user.email,
            "user_id": transaction.user_id,
            "message": transaction.message,
            "created_at": transaction.created_at.isoformat(),
            "expires_at": transaction.expires_at.isoformat(),
        }
        row = delivery_report.row_from_event(event.kind, event.data or {}, event.created_at,
                                             transaction.created_at)
        if row is not None:
            message["delivery"] = row.as_message()
    return message


PROOF_WORDS = {"passkey": "with a passkey", "password": "by entering their password again"}


def describe(kind, data, actor_name=None):
    """One line for a transaction's timeline, the same on the page and in the live stream."""
    who = actor_name or "Someone"
    channel = CHANNEL_LABELS.get(data.get("channel"), data.get("channel"))
    attempt = f"attempt {data['attempt']}" if data.get("attempt") else ""
    if kind == "transaction.created":
        via = ", ".join(CHANNEL_LABELS.get(c, c) for c in data.get("channels", []))
        return f"{who} sent the request" + (f" through {via}" if via else "")
    if kind == "transaction.verified":
        how = PROOF_WORDS.get(data.get("proof"))
        return f"{who} verified it" + (f" {how}" if how else "")
    if kind == "transaction.denied":
        if data.get("reason") == "wrong_code":
            return "Denied: the wrong code was picked three times"
        return f"{who} denied it"
    if kind == "binding.wrong_pick":
        return (f"{who} picked a wrong code, {data.get('picked')} "
                f"({data.get('picks')} of {data.get('limit')} allowed)")
    if kind == "passkey.used":
        used = f"{who} proved it is them with the passkey {data.get('name')!r}"
        if data.get("new"):
            used += (f", registered less than a day before ({_when(data.get('registered_at'))}):"
                     " ask them whether they added it")
        return used
    if kind == "passkey.registered":
        return f"{who} registered the passkey {data.get('name')!r}"
    if kind == "passkey.removed":
        return f"{who} removed the passkey {data.get('name')!r}"
    if kind == "verification.refused":
        return f"{who} could not verify: {data.get('reason')}"
    if kind == "transaction.cancelled":
        return f"{who} cancelled the request"
    if kind == "transaction.expired":
        return "Expired without an answer"
    if kind == "delivery.sent":
        return delivery_report.accepted_words(data.get("channel"), data.get("http_status"),
                                              data.get("attempt"))
    if kind == "delivery.retrying":
        return (f"{channel}: {attempt} failed ({data.get('error')}); trying again at "
                f"{_clock(data.get('next_attempt_at'))}")
    if kind == "delivery.failed":
        return f"{channel}: the notification failed: {data.get('error')}"
    if kind == "delivery.cancelled":
        return f"{channel}: not sent: {data.get('reason')}"
    return kind


def _when(iso):
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else "a recent time"


def _clock(iso):
    return iso[11:19] + " UTC" if iso else "a later time"


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


# -- live streams ---------------------------------------------------------------------------

REPLAY_BATCH = 500


@dataclass(frozen=True)
class Viewer:
    """Who is watching, captured when the stream opens, so deciding visibility needs no database."""

    user_id: int
    sees_all: bool

    def may_see(self, message):
        transaction = message.get("transaction")
        if transaction is None:
            return False
        return self.sees_all or transaction["requestor_id"] == self.user_id


def replay(viewer, after_id, limit=REPLAY_BATCH):
    """Transaction events newer than ``after_id`` that the viewer may see, oldest first."""
    query = (
        select(Event)
        .join(Transaction, Event.transaction_id == Transaction.id)
        .options(contains_eager(Event.transaction), joinedload(Event.actor))
        .where(Event.id > after_id)
        .order_by(Event.id)
        .limit(limit)
    )
    if not viewer.sees_all:
        query = query.where(Transaction.requestor_id == viewer.user_id)
    return [message_for(event) for event in db.session.scalars(query).unique()]


def latest_event_id():
    return db.session.scalar(select(func.max(Event.id))) or 0


def sse_format(message):
    return f"id: {message['id']}\ndata: {json.dumps(message, separators=(',', ':'))}\n\n"


class SharedFormat:
    """``sse_format`` for live messages, once per message object rather than once per watcher.

    The broker hands the same message object to every watcher of a process, and serialising it
    for each of them was a large part of a fan-out's cost (bench/fanout.py). The last few
    (message, text) pairs are kept; holding the messages means an object's id cannot be reused
    while its text is cached. An equal message that is another object (a replay read from the
    table) is formatted afresh.
    """

    def __init__(self, size=8):
        self.size = size
        self._recent = ()  # replaced, never changed in place: safe to read from any thread

    def __call__(self, message):
        for seen, text in self._recent:
            if seen is message:
                return text
        text = sse_format(message)
        self._recent = ((message, text),) + self._recent[:self.size - 1]
        return text


_live_format = SharedFormat()


def stream(viewer, after_id, broker, *, heartbeat, lifetime, clock=time.monotonic):
    """Server-sent events for one watcher: replay what they missed, then live, then end.

    Ids reach the watcher in increasing order, none skipped. Event ids commit in the order
    they were given (``record``), but processes publish after their commits in whatever order
    they get to it: a live message that is not the next id makes the stream catch up from the
    table instead. A message at or below the last id seen is already sent (or not the
    watcher's). It subscribes before reading the table, so an event committed in between
    arrives either way. It holds no database connection while it waits. A full queue (a slow
    watcher) makes it catch up from the table instead of dropping events.
    """
    subscription = broker.subscribe()
    try:
        yield f"retry: {STREAM_RETRY_MS}\n: stream open\n\n"
        last_id = yield from _catch_up(viewer, after_id)
        deadline = clock() + lifetime
        while (remaining := deadline - clock()) > 0:
            message = subscription.get(timeout=min(heartbeat, remaining))
            if message is CLOSE:
                return
            if message is RESYNC or subscription.overflowed:
                subscription.overflowed = False
                subscription.drain()
                last_id = yield from _catch_up(viewer, last_id)
                continue
            if message is None:
                yield ": keepalive\n\n"
                continue
            if message["id"] <= last_id:
                continue
            if message["id"] != last_id + 1:
                # Every id below this one has committed or rolled back (a rolled-back id is a
                # gap for good on PostgreSQL): the table has all there is to send before it.
                last_id = max(message["id"], (yield from _catch_up(viewer, last_id)))
                continue
            last_id = message["id"]
            if viewer.may_see(message):
                yield _live_format(message)
    finally:
        broker.unsubscribe(subscription)


STREAM_RETRY_MS = 2000


def _catch_up(viewer, after_id):
    """Replay from the table in batches, yielding frames; returns the id the stream is now
    at. The session is closed before the stream waits again."""
    try:
        # Read before the rows: every id up to it has settled, so the replay has them all.
        now_at = latest_event_id()
        while batch := replay(viewer, after_id):
            for message in batch:
                after_id = message["id"]
                now_at = max(now_at, after_id)
                yield sse_format(message)
            if len(batch) < REPLAY_BATCH:
                break
        return now_at
    finally:
        db.session.remove()
