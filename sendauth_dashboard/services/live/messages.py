"""Events as the JSON a live stream sends: the same on a page and in a stream, with the
markup a page shows for them drawn by the page's own templates, and the words of
``words.describe``."""
import threading
from contextlib import nullcontext

from flask import current_app, has_request_context
from sqlalchemy import select

from ...core import event_kinds as kinds
from ...extensions import db
from ...models import Event, utcnow
from ...runtime import runtime
from ..requests import delivery_report, risks
from .words import describe


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
