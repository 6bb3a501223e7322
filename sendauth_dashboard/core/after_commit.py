"""Work that follows a commit, in one place.

What a change sets in motion outside the database (its events published to the broker, the
dispatchers woken for its deliveries) must happen once the change is committed, and never
for a change rolled back. Services ask for such work with ``later(fn)``; the events that
``event_log.record`` adds are published here too. ``install`` (called by ``create_app``)
hooks the three moments of a database session that make this work, and is handed what turns
an event into the message watchers read (``services.live.messages``: the floor names nothing
above it).
"""
from flask import has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from ..extensions import db
from ..runtime import runtime
from .event_log import PENDING, READY

CALLBACKS = "sendauth_after_commit"

# What turns a flushed Event into the message published for it; set by ``install``.
_describe = None


def later(fn, *args):
    """Call ``fn(*args)`` once the current database transaction commits; never if it rolls
    back."""
    db.session.info.setdefault(CALLBACKS, []).append((fn, args))


def _describe_flushed_events(session, flush_context):
    """An event's message is made when its row is written: its id is known then, and what it
    says is the state as of the event."""
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    ready = session.info.setdefault(READY, [])
    for event in pending:
        ready.append(_describe(event, event.transaction, event.actor))


def _after_commit(session):
    ready = session.info.pop(READY, None)
    callbacks = session.info.pop(CALLBACKS, None)
    if not has_app_context():
        return
    if ready:
        broker = runtime().broker
        for message in ready:
            broker.publish(message)
    for fn, args in callbacks or ():
        fn(*args)


def _after_rollback(session, ended):
    """``ended`` is the database transaction rolled back: only the outermost one drops the
    work (a savepoint's rollback leaves the rest of the change standing)."""
    if ended.parent is None:
        for key in (PENDING, READY, CALLBACKS):
            session.info.pop(key, None)


_HOOKS = (("after_flush_postexec", _describe_flushed_events),
          ("after_commit", _after_commit),
          ("after_soft_rollback", _after_rollback))


def install(describe):
    """Hook every database session (once per process); ``describe(event, transaction, actor)``
    makes the message an event is published as."""
    global _describe
    _describe = describe
    for name, hook in _HOOKS:
        if not sa_event.contains(Session, name, hook):
            sa_event.listen(Session, name, hook)
