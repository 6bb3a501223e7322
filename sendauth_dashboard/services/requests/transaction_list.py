"""The transaction list: what a viewer may see, narrowed by words, dates, status and people,
newest first, in numbered pages, with a count of what matches.

Search words match part of the user's or the requestor's name or email, or of the message or
the context, case-insensitively; every word must match somewhere. Whatever is typed is matched
as text: ``%`` and ``_`` are escaped, so no input matches everything by accident. On
PostgreSQL the trigram indexes on the message and the context (``pg_trgm``, migration 0004)
answer a word of three or more letters without reading every row.
"""
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select, text

from ...extensions import db
from ...models import TRANSACTION_STATES, Transaction, User, utcnow
from .transactions import visible_to

# The list narrows to any state a transaction can be seen in.

PAGE_SIZE = 50
SEARCH_MAX_CHARS = 200
SEARCH_MAX_WORDS = 8
# Counting stops here: a search that matches more says "10,000 or more".
COUNT_LIMIT = 10_000
# People whose name or email matches one word; beyond this the word is too vague to be useful
# for people (it still matches messages and contexts).
PEOPLE_LIMIT = 1_000

_TERMS = re.compile(r'"([^"]+)"|(\S+)')


@dataclass(frozen=True)
class Filters:
    q: str = ""
    status: str = ""
    user: str = ""
    requestor: str = ""
    ticket: str = ""
    since: date | None = None
    until: date | None = None

    def as_args(self):
        values = (("q", self.q), ("status", self.status), ("user", self.user),
                  ("requestor", self.requestor), ("ticket", self.ticket),
                  ("since", self.since.isoformat() if self.since else ""),
                  ("until", self.until.isoformat() if self.until else ""))
        return {k: v for k, v in values if v}


def search_terms(q):
    """The words of a search (a "quoted phrase" is one), at most SEARCH_MAX_WORDS of them."""
    q = (q or "")[:SEARCH_MAX_CHARS]
    terms = []
    for phrase, word in _TERMS.findall(q):
        term = (phrase or word).strip().strip('"').strip()
        if term and term.lower() not in terms:
            terms.append(term.lower())
    return terms[:SEARCH_MAX_WORDS]


def _matching_people(term):
    pattern = _contains(term)
    return db.session.scalars(
        select(User.id).where(or_(_like(User.name, pattern), _like(User.email, pattern)))
        .limit(PEOPLE_LIMIT)
    ).all()


def _like(column, pattern):
    """Case-insensitive: ILIKE on PostgreSQL (which its trigram indexes answer); SQLite's
    LIKE already ignores case (of ASCII letters, as its lower() does)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column.ilike(pattern, escape="\\")
    return column.like(pattern, escape="\\")


def _contains(term):
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _term_condition(term):
    pattern = _contains(term)
    people = _matching_people(term)
    # The cheap comparisons first: SQLite tries the arms in order.
    arms = [Transaction.user_id.in_(people), Transaction.requestor_id.in_(people)] if people \
        else []
    return or_(*arms, _like(Transaction.message, pattern), _like(Transaction.context, pattern),
               _like(Transaction.ticket_id, pattern))


def _status_condition(status, now):
    if status == "pending":
        return Transaction.pending_at(now)
    if status == "expired":
        return or_(Transaction.status == "expired", Transaction.overdue_at(now))
    return Transaction.status == status


def _start_of(day):
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def matching(viewer, filters, now=None):
    """The query for what the viewer may see and the filters match (no order, no limit)."""
    now = now or utcnow()
    query = visible_to(viewer)
    if filters.status in TRANSACTION_STATES:
        query = query.where(_status_condition(filters.status, now))
    for field, column in (("user", Transaction.user_id), ("requestor", Transaction.requestor_id)):
        email = getattr(filters, field).strip().lower()
        if email:
            person = select(User.id).where(User.email == email).scalar_subquery()
            query = query.where(column == person)
    if filters.ticket.strip():
        query = query.where(Transaction.ticket_id == filters.ticket.strip())
    if filters.since:
        query = query.where(Transaction.created_at >= _start_of(filters.since))
    if filters.until and filters.until < date.max:
        query = query.where(Transaction.created_at < _start_of(filters.until + timedelta(days=1)))
    for term in search_terms(filters.q):
        query = query.where(_term_condition(term))
    return query


@dataclass(frozen=True)
class Page:
    rows: list
    number: int
    page_size: int
    total: int
    total_is_floor: bool  # True when counting stopped at COUNT_LIMIT

    @property
    def last(self):
        return max(1, -(-self.total // self.page_size))

    @property
    def has_next(self):
        return self.number < self.last

    def numbers(self, around=2):
        """The page numbers to offer: the first, the last, and a few around this one; None
        stands for a gap."""
        wanted = {1, self.last, *range(self.number - around, self.number + around + 1)}
        shown, previous = [], 0
        for n in sorted(n for n in wanted if 1 <= n <= self.last):
            if n - previous > 1:
                shown.append(None)
            shown.append(n)
            previous = n
        return shown


def listing(viewer, filters, page=1, page_size=PAGE_SIZE, now=None):
    """One numbered page of what matches, newest first, and how many match in all.

    One statement gives both: the ids of what matches (newest first, at most COUNT_LIMIT + 1),
    counted by a window function, and the page cut from them. A search for a rare word reads
    the table once, not once to count and again for the page, and only the page's ids leave
    the database."""
    page = max(1, page)
    if filters.q and db.session.get_bind().dialect.name == "postgresql":
        # A search reads scattered rows through its indexes. PostgreSQL's default cost of a
        # random read (4, set for spinning disks) makes it read the whole table instead, five
        # times slower in bench/listing.py; 1.1 is the usual setting for SSDs. This
        # transaction only.
        db.session.execute(text("SET LOCAL random_page_cost = 1.1"))
    # Materialized: planned as a whole, for all its rows, not for the first page's worth (which
    # would walk the primary key testing every row against the search).
    matches = (matching(viewer, filters, now).with_only_columns(Transaction.id)
               .order_by(Transaction.id.desc()).limit(COUNT_LIMIT + 1)
               .cte("matches").prefix_with("MATERIALIZED", dialect="postgresql"))
    counted = db.session.execute(
        select(matches.c.id, func.count().over())
        .order_by(matches.c.id.desc()).offset((page - 1) * page_size).limit(page_size)
    ).all()
    if not counted and page == 1:
        return Page([], 1, page_size, 0, False)
    total = counted[0][1] if counted else 0
    shown = Page([], page, page_size, min(total, COUNT_LIMIT), total > COUNT_LIMIT)
    if page > shown.last:
        # Past the last page (an old link, or typed): the last page instead.
        first = listing(viewer, filters, page=1, page_size=page_size, now=now)
        return listing(viewer, filters, page=first.last, page_size=page_size, now=now) \
            if first.last > 1 else first
    rows = db.session.scalars(
        select(Transaction).where(Transaction.id.in_([id_ for id_, _ in counted]))
        .order_by(Transaction.id.desc())
    ).unique().all()
    return Page(rows, page, page_size, shown.total, shown.total_is_floor)


def status_counts(viewer, filters, now=None):
    """How many of what the filters match, whatever their status, are in each state at
    ``now``: {state: count} (every state, 0 when none), or None when more than COUNT_LIMIT
    match: the tabs of the list then say no number rather than read every row on each visit."""
    now = now or utcnow()
    newest = (matching(viewer, replace(filters, status=""), now)
              .with_only_columns(Transaction.id, Transaction.status_at(now).label("state"))
              .order_by(Transaction.id.desc()).limit(COUNT_LIMIT + 1).subquery())
    counts = dict(db.session.execute(
        select(newest.c.state, func.count()).group_by(newest.c.state)).all())
    if sum(counts.values()) > COUNT_LIMIT:
        return None
    return {state: counts.get(state, 0) for state in TRANSACTION_STATES}


EXPORT_BATCH = 1000
EXPORT_HEADER = ("id", "status", "user_email", "user_name", "requestor_email", "message",
                 "context", "ticket_system", "ticket_id", "ticket_url", "sent_utc",
                 "completed_utc")


def export_rows(viewer, filters, now=None):
    """Every transaction the viewer may see that the filters match, newest first, as CSV-ready
    rows (the header first), read a batch at a time."""
    now = now or utcnow()
    yield EXPORT_HEADER
    before = None
    while True:
        query = matching(viewer, filters, now).order_by(Transaction.id.desc()).limit(EXPORT_BATCH)
        if before is not None:
            query = query.where(Transaction.id < before)
        batch = db.session.scalars(query).unique().all()
        for t in batch:
            yield (t.public_id, t.status_at(now), t.user.email, t.user.name, t.requestor.email,
                   t.message, t.context, t.ticket_system, t.ticket_id, t.ticket_url,
                   t.created_at.isoformat(), t.completed_at.isoformat() if t.completed_at
                   else "")
        if len(batch) < EXPORT_BATCH:
            return
        before = batch[-1].id
        db.session.expunge_all()
