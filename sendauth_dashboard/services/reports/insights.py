"""Insights: what happened over a range of days in the reader's time zone.

The figures come from the per-day tallies (services.reports.tallies), never from every row:
what has ended is tallied as it ends; what has not (requests still waiting, notifications not
yet sent) is read from the rows, which are few. Medians and 90th percentiles interpolate
between neighbouring values, as PostgreSQL's ``percentile_cont`` does, over whole seconds.
"""
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import accumulate

from sqlalchemy import and_, select, union_all

from ... import channels
from ...extensions import db
from ...models import TRANSACTION_STATES, UNTIMED, Delivery, Transaction, User, utcnow
from . import tallies
from .reader_days import (  # noqa: F401 (the page's names for them)
    DEFAULT_DAYS,
    MAX_DAYS,
    PRESETS,
    DayRange,
    RangeError,
    parse_range,
    zone_label,
    zone_named,
)

ANSWERED = tallies.ANSWERED
TOP = 10
# Time to answer, in seconds: (upper bound, label); the last bucket has no bound.
ANSWER_BUCKETS = ((10, "under 10 s"), (30, "10–30 s"), (60, "30 s–1 min"),
                  (120, "1–2 min"), (300, "2–5 min"), (None, "over 5 min"))
DELIVERY_OUTCOMES = ("sent", "failed", "cancelled", "queued", "sending")


MEDIAN, NINETIETH = 5, 9  # percentiles, in tenths


def position(total, tenths):
    """Where ``tenths``' percentile of ``total`` sorted values lies: (rank counted from 0,
    share of the way to the next rank), in whole numbers, as percentile_cont places it."""
    steps = (total - 1) * tenths
    return steps // 10, (steps % 10) / 10


def percentiles(histogram, tenths=(MEDIAN, NINETIETH)):
    """Each of ``tenths``' percentiles of the values counted in ``histogram`` ({value: count}),
    interpolated between the two nearest ranks; None when it counts nothing."""
    values = sorted(histogram)  # a value counted 0 times is never the one found below
    ranks = list(accumulate(map(histogram.__getitem__, values)))
    if not ranks or ranks[-1] <= 0:
        return None
    total = ranks[-1]
    found = []
    for wanted in tenths:
        rank, share = position(total, wanted)
        low = values[bisect_right(ranks, rank)]
        high = values[bisect_right(ranks, rank + 1)] if rank + 1 < total else low
        found.append(low + (high - low) * share)
    return found


def summary_of(histogram):
    """(median, 90th percentile, how many) of a histogram, or None when it is empty."""
    found = percentiles(histogram)
    return None if found is None else (*found, sum(histogram.values()))


@dataclass
class Counts:
    """What the tallies and the live rows say, before the figures are drawn from it."""

    outcomes: dict = field(default_factory=lambda: defaultdict(Counter))   # day -> state
    answers: dict = field(default_factory=lambda: defaultdict(Counter))    # day -> seconds
    answered: Counter = field(default_factory=Counter)  # seconds, over the range
    deliveries: dict = field(default_factory=lambda: defaultdict(Counter))  # channel -> status
    delivery_times: dict = field(default_factory=lambda: defaultdict(Counter))  # channel
    people: dict = field(default_factory=lambda: defaultdict(Counter))     # subject -> id

    def add(self, day, subject, key, outcome, seconds, count):
        """One tally; ``day`` None for the range's sums."""
        if subject == "request":
            self.outcomes[day][outcome] += count
        elif subject == "answer":
            self.answered[seconds] += count
            if day is not None:
                self.answers[day][seconds] += count
        elif subject == "delivery":
            self.deliveries[key][outcome] += count
            if outcome == "sent" and seconds != UNTIMED:
                self.delivery_times[key][seconds] += count
        else:
            self.people[subject][key] += count


def count(day_range, now):
    """The range's counts: its days' tallies, corrected on the days the clocks change, and
    the requests and notifications still under way."""
    spans = day_range.spans()
    tallies.prepare({minutes for minutes, _, _ in spans})
    counts = Counts()
    requests, answers, over_range = tallies.read(spans)
    days = {day.isoformat(): day for day in day_range.days}
    for day, outcome, number in requests:
        counts.outcomes[days[day]][outcome] += number
    for day, seconds, number in answers:  # the bulk of the rows (one a day and second)
        counts.answers[days[day]][seconds] = number
        counts.answered[seconds] += number
    for row in over_range:
        counts.add(None, *row)
    _correct_odd_days(counts, day_range)
    _count_under_way(counts, day_range, now)
    return counts


def _correct_odd_days(counts, day_range):
    """A day the clocks change is 23 or 25 hours long; its tallies hold 24: count the hour
    they miss, or take away the hour they hold of the next day, from the rows."""
    for day, start, end, sign in day_range.odd_hours():
        pieces = tallies.counted_from_rows(
            lambda column: tallies.local_day(column, 0),
            lambda column, start=start, end=end: and_(column >= start, column < end))
        for _, subject, key, outcome, seconds, number in db.session.execute(
                union_all(*pieces)).all():
            counts.add(day, subject, key, outcome, seconds, sign * number)


def _count_under_way(counts, day_range, now):
    """Requests still waiting (expired to a reader once past their expiry, as the list shows
    them) and notifications not yet sent: not tallied until they end."""
    in_range = and_(Transaction.created_at >= day_range.start,
                    Transaction.created_at < day_range.end)
    for created_at, status in db.session.execute(
            select(Transaction.created_at, Transaction.status_at(now))
            .where(Transaction.status == "pending", in_range)).all():
        counts.outcomes[day_range.day_of(created_at)][status] += 1
    for channel, status, number in db.session.execute(
            select(Delivery.channel, Delivery.status, db.func.count())
            .where(Delivery.status.in_(("queued", "sending")), Delivery.action == "notify",
                   Delivery.created_at >= day_range.start, Delivery.created_at < day_range.end)
            .group_by(Delivery.channel, Delivery.status)).all():
        counts.deliveries[channel][status] += number


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

    def state_total(self, state):
        return sum(states[state] for states in self.outcomes.values())

    @property
    def verified_share(self):
        """Of the requests that ended, the share verified (0 to 1), or None."""
        ended = self.total - self.state_total("pending")
        return self.state_total("verified") / ended if ended else None

    @property
    def failed_deliveries(self):
        return sum(outcomes["failed"] for outcomes in self.delivery_outcomes.values())

    @property
    def finished_deliveries(self):
        return sum(outcomes["failed"] + outcomes["sent"]
                   for outcomes in self.delivery_outcomes.values())


def _bucketed(histogram):
    counted = [0] * len(ANSWER_BUCKETS)
    for seconds, number in histogram.items():
        counted[next(n for n, (bound, _) in enumerate(ANSWER_BUCKETS)
                     if bound is None or seconds < bound)] += number
    return [(label, counted[n]) for n, (_, label) in enumerate(ANSWER_BUCKETS)]


def _busiest(people):
    """[(name, email, count)], most first, at most TOP."""
    counted = {int(key): number for key, number in people.items() if number > 0}
    named = db.session.execute(select(User.id, User.name, User.email)
                               .where(User.id.in_(counted))).all() if counted else []
    ranked = sorted(((name, email, counted[person]) for person, name, email in named),
                    key=lambda row: (-row[2], row[0]))
    return ranked[:TOP]


def gather(day_range, now=None):
    counts = count(day_range, now or utcnow())
    answered = counts.answered
    order = {name: n for n, name in enumerate(channels.names())}
    known = sorted((c for c in counts.deliveries if c in order), key=order.get)
    return Insights(
        range=day_range,
        outcomes={day: {state: counts.outcomes[day][state] for state in TRANSACTION_STATES}
                  for day in day_range.days},
        answer_daily={day: summary for day in day_range.days
                      if (summary := summary_of(counts.answers[day]))},
        answer_overall=summary_of(answered),
        answer_buckets=_bucketed(answered),
        delivery_time={channel: summary_of(counts.delivery_times[channel]) for channel in known
                       if sum(counts.delivery_times[channel].values()) > 0},
        delivery_outcomes={channel: {status: counts.deliveries[channel][status]
                                     for status in DELIVERY_OUTCOMES}
                           for channel in known if sum(counts.deliveries[channel].values())},
        requestors=_busiest(counts.people["requestor"]),
        users=_busiest(counts.people["user"]),
    )


# -- tables, as the page, its charts and the CSV downloads show them ------------------------

def _seconds(value):
    return "" if value is None else round(value, 1)


def tables(insights):
    """Each chart's numbers as (name, title, header, rows): the same for screen and CSV.
    Durations are in seconds (the page writes them in words)."""
    days = insights.range.days
    answer = insights.answer_daily
    return [
        ("outcomes", "Requests per day, by outcome", ("Day", *TRANSACTION_STATES, "total"),
         [(d.isoformat(), *insights.outcomes[d].values(), sum(insights.outcomes[d].values()))
          for d in days]),
        ("answer-time", "Time to answer per day",
         ("Day", "median (s)", "90th percentile (s)", "answered"),
         [(d.isoformat(), *((_seconds(answer[d][0]), _seconds(answer[d][1]), answer[d][2])
                            if d in answer else ("", "", 0))) for d in days]),
        ("answer-distribution", "Time to answer: how many answered within",
         ("Time to answer", "answered"), list(insights.answer_buckets)),
        ("delivery-time", "Delivery time per channel, queued to accepted",
         ("Channel", "median (s)", "90th percentile (s)", "sent"),
         [(channels.label(c), _seconds(v[0]), _seconds(v[1]), v[2])
          for c, v in insights.delivery_time.items()]),
        ("delivery-outcomes", "Notifications per channel, by outcome",
         ("Channel", *DELIVERY_OUTCOMES),
         [(channels.label(c), *v.values()) for c, v in insights.delivery_outcomes.items()]),
        ("requestors", "Busiest requestors", ("Requestor", "email", "requests"),
         insights.requestors),
        ("users", "Users asked most often", ("User", "email", "requests"), insights.users),
    ]


DURATION_COLUMNS = {"answer-time": {1, 2}, "delivery-time": {1, 2}}
"""The columns of ``tables`` that hold seconds: (table name -> column indexes)."""
