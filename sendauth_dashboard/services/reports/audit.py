"""The audit log: every event that is not about one transaction, newest first.

Settings changes, channel tests, users and roles, passkeys, messaging preferences and the
organisation's rules. Event data never holds a secret (settings changes name a secret, never
its value; test errors are redacted before they are recorded), so the log shows it as it is.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from ... import channels
from ...core import event_kinds as kinds
from ...core.errors import ServiceError
from ...extensions import db
from ...models import Event, User
from ..live import words

PAGE_SIZE = 50
EXPORT_BATCH = 1000
MAX_ACTOR_LENGTH = 254

# What the kind filter offers: (value, label, the kinds' prefixes).
KIND_GROUPS = (
    ("settings", "Channel settings", tuple(map(kinds.settings_changed, channels.names()))),
    ("tests", "Channel tests", tuple(map(kinds.settings_tested, channels.names()))),
    ("organisation", "Organisation rules, messages, routing and approval groups",
     (kinds.SETTINGS_ORGANISATION_CHANGED, kinds.SETTINGS_MESSAGES_CHANGED,
      kinds.SETTINGS_ROUTING_CHANGED, "approval_group.")),
    ("sign_in", "Single sign-on", (kinds.SETTINGS_SIGN_IN_CHANGED,)),
    ("users", "Users and roles", ("user.",)),
    ("passkeys", "Passkeys", ("passkey.",)),
    ("messaging", "Messaging preferences", ("profile.",)),
    ("api_keys", "API keys", ("api_key.",)),
    ("webhooks", "Webhooks", ("webhook.",)),
)
KIND_GROUP_LABELS = {value: label for value, label, _ in KIND_GROUPS}


class AuditFilterError(ServiceError):
    """A filter that cannot be applied, with what to type instead."""


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    actor: str = ""
    since: date | None = None
    until: date | None = None


def parse_filters(kind="", actor="", since="", until=""):
    """Filters from the query string; AuditFilterError says which one is wrong and why."""
    kind = (kind or "").strip()
    if kind and kind not in KIND_GROUP_LABELS:
        choices = ", ".join(KIND_GROUP_LABELS)
        raise AuditFilterError(f"Unknown kind {kind[:40]!r}: choose one of {choices}.", "kind")
    actor = (actor or "").strip()
    if len(actor) > MAX_ACTOR_LENGTH:
        raise AuditFilterError(
            f"Search for who did it with at most {MAX_ACTOR_LENGTH} characters.", "actor")
    first, last = _date(since, "since"), _date(until, "until")
    if first and last and first > last:
        raise AuditFilterError(
            f"The first day ({first}) is after the last day ({last}): swap them.", "until")
    return Filters(kind=kind, actor=actor, since=first, until=last)


def _date(raw, field):
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise AuditFilterError(
            f"{raw[:40]!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-31.", field
        ) from None


def day_start(day):
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _query(filters):
    query = select(Event).where(Event.transaction_id.is_(None))
    if filters.kind:
        prefixes = dict((v, p) for v, _, p in KIND_GROUPS)[filters.kind]
        query = query.where(or_(*[
            Event.kind.startswith(p, autoescape=True) if p.endswith(".") else Event.kind == p
            for p in prefixes
        ]))
    if filters.actor:
        needle = filters.actor.lower()
        people = select(User.id).where(or_(
            func.lower(User.email).contains(needle, autoescape=True),
            func.lower(User.name).contains(needle, autoescape=True),
        ))
        query = query.where(Event.actor_id.in_(people))
    if filters.since:
        query = query.where(Event.created_at >= day_start(filters.since))
    if filters.until:
        query = query.where(Event.created_at < day_start(filters.until + timedelta(days=1)))
    return query.options(joinedload(Event.actor))


def page(filters, before_id=None, page_size=PAGE_SIZE):
    """One page, newest first: (events, id to pass as ``before`` for the next page, or None)."""
    query = _query(filters).order_by(Event.id.desc()).limit(page_size + 1)
    if before_id:
        query = query.where(Event.id < before_id)
    rows = db.session.scalars(query).all()
    more = len(rows) > page_size
    rows = rows[:page_size]
    return rows, (rows[-1].id if more else None)


def export_rows(filters):
    """Every matching event as CSV-ready rows, newest first, read a batch at a time."""
    yield ("id", "time_utc", "kind", "actor_email", "actor_name", "what")
    before = None
    while True:
        batch, before = page(filters, before_id=before, page_size=EXPORT_BATCH)
        for event in batch:
            actor = event.actor
            yield (event.id, event.created_at.isoformat(), event.kind,
                   actor.email if actor else "", actor.name if actor else "", describe(event))
        db.session.expunge_all()
        if before is None:
            return


def describe(event):
    """One line saying what happened, in the product's words."""
    data = event.data or {}
    who = event.actor.name if event.actor is not None else "The system"
    return words.describe(event.kind, data, who)

