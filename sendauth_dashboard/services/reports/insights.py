"""Insights: what happened over a range of days, counted in the database.

Every figure is one SQL query that groups and counts (never a loop over rows in Python), on
SQLite and PostgreSQL alike. Days are UTC days. Percentiles interpolate between neighbouring
values as PostgreSQL's ``percentile_cont`` does; on SQLite the same is done with window
functions (each value's rank and its group's size).
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import (
    Date,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)

from ... import channels
from ...extensions import db
from ...models import TRANSACTION_STATES, Delivery, Transaction, User, utcnow

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
ANSWERED = ("verified", "denied")
TOP = 10
# Time to answer, in seconds: (upper bound, label); the last bucket has no bound.
ANSWER_BUCKETS = ((10, "under 10 s"), (30, "10–30 s"), (60, "30 s–1 min"),
                  (120, "1–2 min"), (300, "2–5 min"), (None, "over 5 min"))
DELIVERY_OUTCOMES = ("sent", "failed", "cancelled", "queued", "sending")


class RangeError(ValueError):
    """A range that cannot be shown, with what to ask for instead."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DayRange:
    """From the first to the last UTC day, both included."""

    first: date
    last: date
    preset: int | None = None

    @property
    def start(self):
        return datetime.combine(self.first, time.min, tzinfo=timezone.utc)

    @property
    def end(self):
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=timezone.utc)

    @property
    def days(self):
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def parse_range(days="", since="", until="", today=None):
    """The range asked for: a preset (the last 7, 30 or 90 days) or from ``since`` to ``until``."""
    today = today or utcnow().date()
    since, until = (since or "").strip(), (until or "").strip()
    if since or until:
        first = _date(since, "since") if since else None
        last = _date(until, "until") if until else today
        first = first or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise RangeError(f"The first day ({first}) is after the last day ({last}): "
                             "swap them.", "until")
        if (last - first).days + 1 > MAX_DAYS:
            raise RangeError(f"Choose at most {MAX_DAYS} days; from {first} to {last} is "
                             f"{(last - first).days + 1}.", "since")
        return DayRange(first, last)
    try:
        count = int(days) if days else DEFAULT_DAYS
    except ValueError:
        count = 0
    if count not in PRESETS:
        raise RangeError(f"Choose the last {', '.join(map(str, PRESETS))} days, or give a first "
                         "and a last day.", "days")
    return DayRange(today - timedelta(days=count - 1), today, preset=count)


def _date(raw, field_name):
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise RangeError(f"{raw[:40]!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-31.",
                         field_name) from None


# -- SQL that reads the same on both databases ----------------------------------------------

def _postgres():
    return db.session.get_bind().dialect.name == "postgresql"


def day_of(column):
    """The UTC day of a timestamp column (stored as UTC without a zone on both databases)."""
    return func.date(column) if not _postgres() else cast(column, Date)


def seconds_between(start, end):
    if _postgres():
        # date_part is double precision; extract is numeric, several times slower to compute.
        return func.date_part("epoch", end - start)
    # Julian days are floating point: to the millisecond, so 60 s is 60, not 59.99999.
    return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)


def percentiles(keyed, fractions=(0.5, 0.9)):
    """Per ``keyed.c.key``: each fraction's percentile of ``keyed.c.value``, and the count."""
    if _postgres():
        return select(
            keyed.c.key,
            *[func.percentile_cont(p).within_group(keyed.c.value) for p in fractions],
            func.count(),
        ).group_by(keyed.c.key)
    ranked = select(
        keyed.c.key, keyed.c.value,
        func.row_number().over(partition_by=keyed.c.key, order_by=keyed.c.value).label("rank"),
        func.count().over(partition_by=keyed.c.key).label("size"),
    ).subquery()
    columns = []
    for p in fractions:
        position = literal(p, Float) * (ranked.c.size - 1)
        below = cast(position, Integer)  # positive, so the floor
        share = position - below
        columns.append(func.sum(case(
            (ranked.c.rank - 1 == below, ranked.c.value * (1 - share)),
            (ranked.c.rank - 1 == below + 1, ranked.c.value * share),
            else_=0.0,
        )))
    return select(ranked.c.key, *columns, func.max(ranked.c.size)).group_by(ranked.c.key)


def effective_status(now):
    """A pending request past its expiry counts as expired, as the transaction list shows it."""
    return case(
        (and_(Transaction.status == "pending", Transaction.expires_at <= now), "expired"),
        else_=Transaction.status,
    )


def _created_in(column, day_range):
    return and_(column >= day_range.start, column < day_range.end)


# -- the figures -----------------------------------------------------------------------------

@dataclass
class Insights:
    range: DayRange
    outcomes: dict = field(default_factory=dict)        # day -> {state: count}
    answer_daily: dict = field(default_factory=dict)    # day -> (p50, p90, count)
    answer_overall: tuple | None = None                 # (p50, p90, count)
    answer_buckets: list = field(default_factory=list)  # [(label, count)]
    delivery_time: dict = field(default_factory=dict)   # channel -> (p50, p90, count)
    delivery_outcomes: dict = field(default_factory=dict)  # channel -> {status: count}
    requestors: list = field(default_factory=list)      # [(name, email, count)]
    users: list = field(default_factory=list)

    @property
    def total(self):
        return sum(sum(states.values()) for states in self.outcomes.values())


def _day_key(value):
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def outcomes_per_day(day_range, now):
    status = effective_status(now)
    day = day_of(Transaction.created_at)
    rows = db.session.execute(
        select(day, status, func.count())
        .where(_created_in(Transaction.created_at, day_range))
        .group_by(day, status)
    ).all()
    table = {d: {s: 0 for s in TRANSACTION_STATES} for d in day_range.days}
    for day_value, state, count in rows:
        table[_day_key(day_value)][state] = count
    return table


def _rounded(p50, p90, count):
    return (round(float(p50), 1), round(float(p90), 1), count)


def answer_times(day_range):
    """Time to answer (verified or denied): per day, over the range, and how many answered
    within each bucket. One statement: the answered requests are read once."""
    answered = (
        select(day_of(Transaction.created_at).label("day"),
               seconds_between(Transaction.created_at, Transaction.completed_at).label("value"))
        .where(_created_in(Transaction.created_at, day_range),
               Transaction.status.in_(ANSWERED), Transaction.completed_at.is_not(None))
        .cte("answered")
    )

    def tagged(tag, key):
        """Grouped by the key as it is (a date sorts faster than text), then made text."""
        grouped = percentiles(select(key.label("key"), answered.c.value).subquery()).subquery()
        key_, p50, p90, count = grouped.c
        return select(cast(key_, String), p50, p90, count, literal(tag))

    bucket = case(*[(answered.c.value < bound, n) for n, (bound, _) in enumerate(ANSWER_BUCKETS)
                    if bound is not None], else_=len(ANSWER_BUCKETS) - 1)
    counted = select(cast(bucket, String), literal(None, Float), literal(None, Float),
                     func.count(), literal("bucket")).group_by(bucket)
    daily, overall, buckets = {}, None, {}
    for key, p50, p90, count, part in db.session.execute(union_all(
            tagged("day", answered.c.day), tagged("all", literal("all")), counted)).all():
        if part == "day":
            daily[_day_key(key)] = _rounded(p50, p90, count)
        elif part == "all":
            overall = _rounded(p50, p90, count)
        else:
            buckets[int(key)] = count
    return daily, overall, [(label, buckets.get(n, 0))
                            for n, (_, label) in enumerate(ANSWER_BUCKETS)]


def delivery_time_per_channel(day_range):
    """Queued to accepted by the provider, for the deliveries that were sent."""
    keyed = (
        select(Delivery.channel.label("key"),
               seconds_between(Delivery.created_at, Delivery.completed_at).label("value"))
        .where(_created_in(Delivery.created_at, day_range), Delivery.status == "sent",
               Delivery.completed_at.is_not(None))
        .subquery()
    )
    found = {key: _rounded(p50, p90, n)
             for key, p50, p90, n in db.session.execute(percentiles(keyed)).all()}
    return {channel: found[channel] for channel in channels.names() if channel in found}


def delivery_outcomes_per_channel(day_range):
    rows = db.session.execute(
        select(Delivery.channel, Delivery.status, func.count())
        .where(_created_in(Delivery.created_at, day_range))
        .group_by(Delivery.channel, Delivery.status)
    ).all()
    table = {}
    for channel, status, count in rows:
        table.setdefault(channel, {s: 0 for s in DELIVERY_OUTCOMES})[status] = count
    return {channel: table[channel] for channel in channels.names() if channel in table}


def busiest(column, day_range, limit=TOP):
    """The people with the most requests in the range: [(name, email, count)], most first."""
    counted = (
        select(column.label("person_id"), func.count().label("requests"))
        .where(_created_in(Transaction.created_at, day_range))
        .group_by(column)
        .order_by(func.count().desc(), column)
        .limit(limit)
        .subquery()
    )
    return [tuple(row) for row in db.session.execute(
        select(User.name, User.email, counted.c.requests)
        .join(counted, counted.c.person_id == User.id)
        .order_by(counted.c.requests.desc(), User.name)
    ).all()]


def gather(day_range, now=None):
    now = now or utcnow()
    daily, overall, buckets = answer_times(day_range)
    return Insights(
        range=day_range,
        outcomes=outcomes_per_day(day_range, now),
        answer_daily=daily,
        answer_overall=overall,
        answer_buckets=buckets,
        delivery_time=delivery_time_per_channel(day_range),
        delivery_outcomes=delivery_outcomes_per_channel(day_range),
        requestors=busiest(Transaction.requestor_id, day_range),
        users=busiest(Transaction.user_id, day_range),
    )


# -- tables, as the page, its charts and the CSV downloads show them ------------------------

def tables(insights):
    """Each chart's numbers as (name, title, header, rows): the same for screen and CSV."""
    days = insights.range.days
    answer = insights.answer_daily
    return [
        ("outcomes", "Requests per day, by outcome", ("Day", *TRANSACTION_STATES, "total"),
         [(d.isoformat(), *insights.outcomes[d].values(), sum(insights.outcomes[d].values()))
          for d in days]),
        ("answer-time", "Time to answer per day (seconds)",
         ("Day", "median", "90th percentile", "answered"),
         [(d.isoformat(), *(answer[d] if d in answer else ("", "", 0))) for d in days]),
        ("answer-distribution", "Time to answer: how many answered within",
         ("Time to answer", "answered"), list(insights.answer_buckets)),
        ("delivery-time", "Delivery time per channel, queued to accepted (seconds)",
         ("Channel", "median", "90th percentile", "sent"),
         [(channels.label(c), *v) for c, v in insights.delivery_time.items()]),
        ("delivery-outcomes", "Deliveries per channel, by outcome",
         ("Channel", *DELIVERY_OUTCOMES),
         [(channels.label(c), *v.values()) for c, v in insights.delivery_outcomes.items()]),
        ("requestors", "Busiest requestors", ("Requestor", "email", "requests"),
         insights.requestors),
        ("users", "Users asked most often", ("User", "email", "requests"), insights.users),
    ]


TABLE_NAMES = ("outcomes", "answer-time", "answer-distribution", "delivery-time",
               "delivery-outcomes", "requestors", "users")
