"""Tallies: per-day counts of how requests and their notifications ended, kept in the same
database transaction as each outcome, so that insights over months read days, not requests.

A reader's day is a calendar day in their time zone. Tallies are kept for the days at each
UTC offset a reader has needed (UTC's always): a reader in Paris reads the days at +60 in
winter and +120 in summer, one in Kolkata those at +330. An offset seen for the first time is
filled from the rows once (``prepare``), under a lock the writers take too, so no outcome is
missed or counted twice. (services.reports.insights corrects the two days a year when clocks
change, which are 23 or 25 hours long, with the hour counted from the rows.)

Durations are whole seconds on the clock: the time of sending and the time of the answer,
each cut to the second. A median read from tallies is then the one a full count of the rows
gives, to the second.
"""
from datetime import timedelta

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
)

from ...core import event_log
from ...core.rows import upsert_adding
from ...extensions import db
from ...models import UNTIMED, Delivery, InsightOffset, InsightTally, Transaction

ANSWERED = ("verified", "denied")
DELIVERY_ENDINGS = ("sent", "failed", "cancelled")
KEY_COLUMNS = ("offset_minutes", "day", "subject", "key", "outcome", "seconds")


def whole_seconds(start, end):
    """Seconds on the clock from ``start`` to ``end``, each cut to the second."""
    return int((end.replace(microsecond=0) - start.replace(microsecond=0)).total_seconds())


# -- kept up to date as requests are sent and end --------------------------------------------

def request_sent(transaction):
    """Count a new request for its requestor and its user."""
    _add(transaction.created_at, [("requestor", str(transaction.requestor.id), "", UNTIMED),
                                  ("user", str(transaction.user.id), "", UNTIMED)])


def request_ended(transaction, status, completed_at):
    """Count how a request ended, and for an answer, how long it took (a histogram of its
    own: the per-day medians read it alone)."""
    counted = [("request", "", status, UNTIMED)]
    if status in ANSWERED:
        counted.append(("answer", "", "", whole_seconds(transaction.created_at, completed_at)))
    _add(transaction.created_at, counted)


def delivery_ended(channel, created_at, status, completed_at):
    """Count a notification that was sent, failed or was cancelled."""
    seconds = whole_seconds(created_at, completed_at) if status == "sent" else UNTIMED
    _add(created_at, [("delivery", channel, status, seconds)])


def _add(at, counted):
    """Add one to each tally of ``counted``, for every offset kept. A tally's row is shared by
    every request that ends alike on its day: taking the event-order lock first (each writer
    here records an event too) keeps two writers from each holding what the other waits for."""
    event_log.take_order_lock()
    rows = [{"offset_minutes": minutes, "day": (at + timedelta(minutes=minutes)).date(),
             "subject": subject, "key": key, "outcome": outcome, "seconds": seconds, "count": 1}
            for minutes in _offsets_kept() for subject, key, outcome, seconds in counted]
    upsert_adding(InsightTally, rows, KEY_COLUMNS, "count")


def _offsets_kept():
    """The offsets to count for. On PostgreSQL FOR KEY SHARE, held to the commit: ``prepare``
    locks the table against it, so an outcome is counted for a new offset either by its
    writer or by the fill, never both, never neither. (SQLite has one writer at a time.)"""
    return db.session.scalars(select(InsightOffset.minutes)
                              .with_for_update(read=True, key_share=True)).all()


# -- counted from the rows: filling a new offset, and pieces of days -------------------------

def _postgres():
    return db.session.get_bind().dialect.name == "postgresql"


def clock_seconds(start, end):
    """SQL for ``whole_seconds``; UNTIMED without an end."""
    if _postgres():
        seconds = cast(func.extract("epoch", func.date_trunc("second", end)
                                    - func.date_trunc("second", start)), Integer)
    else:
        # Cut to the second as text: SQLite reads .999999 as the next second.
        seconds = (cast(func.strftime("%s", func.substr(end, 1, 19)), Integer)
                   - cast(func.strftime("%s", func.substr(start, 1, 19)), Integer))
    return func.coalesce(seconds, UNTIMED)


def local_day(column, minutes):
    """SQL: the calendar day of a UTC timestamp column at UTC+``minutes``."""
    if _postgres():
        return func.date(column + literal_column(f"INTERVAL '{int(minutes)} minutes'"))
    return func.date(func.substr(column, 1, 19), f"{minutes:+d} minutes")  # as clock_seconds


def counted_from_rows(day_of, where_created=lambda column: true()):
    """Selects of (day, subject, key, outcome, seconds, count) from the rows, as the writers
    above count them; ``day_of(column)`` is the day's SQL, ``where_created(column)`` which
    rows."""
    t, d = Transaction, Delivery
    answer = clock_seconds(t.created_at, t.completed_at)
    sent = case((d.status == "sent", clock_seconds(d.created_at, d.completed_at)),
                else_=UNTIMED)
    by_person = [
        select(day_of(t.created_at), literal(subject), cast(column, String), literal(""),
               literal(UNTIMED), func.count())
        .where(where_created(t.created_at)).group_by(day_of(t.created_at), column)
        for subject, column in (("requestor", t.requestor_id), ("user", t.user_id))]
    return [
        select(day_of(t.created_at), literal("request"), literal(""), t.status,
               literal(UNTIMED), func.count())
        .where(t.status != "pending", where_created(t.created_at))
        .group_by(day_of(t.created_at), t.status),
        select(day_of(t.created_at), literal("answer"), literal(""), literal(""), answer,
               func.count())
        .where(t.status.in_(ANSWERED), where_created(t.created_at))
        .group_by(day_of(t.created_at), answer),
        select(day_of(d.created_at), literal("delivery"), d.channel, d.status, sent,
               func.count())
        .where(d.action == "notify", d.status.in_(DELIVERY_ENDINGS), where_created(d.created_at))
        .group_by(day_of(d.created_at), d.channel, d.status, sent),
        *by_person,
    ]


def prepare(offsets):
    """Make sure the tallies are kept for each UTC offset (minutes) in ``offsets``, filling
    any new one from the rows; commits when it added one."""
    for minutes in sorted(set(offsets) - set(db.session.scalars(select(InsightOffset.minutes)))):
        if _postgres():
            db.session.execute(text("LOCK TABLE insight_offsets IN EXCLUSIVE MODE"))
        if db.session.get(InsightOffset, minutes) is None:
            db.session.add(InsightOffset(minutes=minutes))
            db.session.flush()  # on SQLite, the write lock: no outcome is written meanwhile
            fill(minutes)
        db.session.commit()


def refill():
    """Count every row again, for every offset kept (rows written around the services, as a
    bulk import does, are counted only so); commits."""
    db.session.execute(InsightTally.__table__.delete())
    for minutes in db.session.scalars(select(InsightOffset.minutes)).all():
        fill(minutes)
    db.session.commit()


def fill(minutes):
    """Count every row into the tallies of the days at UTC+``minutes`` (none there yet)."""
    columns = [c for c in KEY_COLUMNS if c != "offset_minutes"] + ["count"]
    for counted in counted_from_rows(lambda column: local_day(column, minutes)):
        db.session.execute(InsightTally.__table__.insert().from_select(
            ["offset_minutes", *columns],
            select(literal(minutes), *counted.subquery().c)))


# -- read ------------------------------------------------------------------------------------

def _where(spans):
    tally = InsightTally
    return or_(*[and_(tally.offset_minutes == minutes, tally.day.between(first, last))
                 for minutes, first, last in spans])


def read(spans):
    """The tallies of the days in ``spans`` ([(offset, first day, last day)]; each day at one
    offset), as plain rows (no ORM: a reader of 90 days at a million requests reads some
    25,000): requests per day (day "YYYY-MM-DD", outcome, count); the times to answer per
    day (day, seconds, count); deliveries and people summed over the spans (subject, key,
    outcome, seconds, count). The answers' sums over the range are the caller's to add up
    from their days: summing those 25,000 rows again in the database cost PostgreSQL more
    than reading them."""
    tally, where = InsightTally, _where(spans)
    connection = db.session.connection()
    per_day = [connection.execute(
        select(cast(tally.day, String), column, tally.count)
        .where(where, tally.subject == subject)).all()
        for subject, column in (("request", tally.outcome), ("answer", tally.seconds))]
    over_range = connection.execute(
        select(tally.subject, tally.key, tally.outcome, tally.seconds, func.sum(tally.count))
        .where(where, tally.subject.in_(("delivery", "requestor", "user")))
        .group_by(tally.subject, tally.key, tally.outcome, tally.seconds)).all()
    return (*per_day, over_range)
