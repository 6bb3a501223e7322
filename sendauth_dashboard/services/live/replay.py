"""Reading missed events from the table: a watcher's replay and catch-up, and the events the
process's Redis listener has not heard."""
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload

from ...core.event_log import latest_event_id
from ...extensions import db
from ...models import Event, Transaction
from .messages import message_for
from .wire import live_frames, sse_format

REPLAY_BATCH = 500


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


def catch_up(viewer, after_id, recent=None, rights=None, opening=False):
    """Frames of what the viewer missed after ``after_id``, oldest first; returns the id the
    stream is now at, or None when the viewer may no longer watch.

    From the process's ``recent`` events (``recent.RecentEvents``) when they reach back that
    far: one read of the table for every stream resuming from there. A user event among them
    may have changed the viewer's rights: a reading of ``rights`` newer than it decides. Else
    from the table, this stream alone, after asking the database whether the viewer may still
    watch (the table's replay has only transaction events, and a user event may be among what
    it fills in), except at the stream's ``opening``, just allowed."""
    found = recent.since(after_id, events_between, _latest) if recent is not None else None
    if found is None:
        if not opening and not viewer.still_allowed():
            return None
        return (yield from _from_table(viewer, after_id))
    messages, now_at = found
    user_events = [m["id"] for m in messages if str(m.get("kind", "")).startswith("user.")]
    if user_events and not viewer.still_allowed(rights, after_event=max(user_events)):
        return None
    for message in messages:
        if viewer.may_see(message):
            yield live_frames(message)
    return now_at


def _from_table(viewer, after_id):
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


def _latest():
    try:
        return latest_event_id()
    finally:
        db.session.remove()


def events_between(after_id, before_id):
    """The messages of every event between two ids, of every kind, oldest first. The session
    is closed before the stream waits again."""
    try:
        query = (select(Event)
                 .options(joinedload(Event.transaction), joinedload(Event.actor))
                 .where(Event.id > after_id, Event.id < before_id)
                 .order_by(Event.id))
        return [message_for(event) for event in db.session.scalars(query).unique()]
    finally:
        db.session.remove()


def reader(app):
    """``read_between(after_id, before_id)`` for the broker: ``events_between`` in ``app``
    (the broker fills gaps in what it heard with them)."""
    def read_between(after_id, before_id):
        with app.app_context():
            return events_between(after_id, before_id)
    return read_between
