"""Days as a reader lives them: calendar days in their time zone, and the range they ask for.

A day starts at the reader's midnight. Most are 24 hours at one UTC offset; the days the
clocks change are 23 or 25 hours long (``odd_hours``)."""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...core.errors import ServiceError
from ...models import utcnow

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
DAY = timedelta(days=1)


class RangeError(ServiceError):
    """A range that cannot be shown, with what to ask for instead."""


def zone_named(name):
    """The time zone called ``name`` (an IANA name such as "Europe/Paris"), or None."""
    name = (name or "").strip()
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_label(zone):
    return getattr(zone, "key", None) or "UTC"


@dataclass(frozen=True)
class DayRange:
    """From the first to the last day, both included, in the reader's time zone."""

    first: date
    last: date
    preset: int | None = None
    zone: tzinfo = field(default=timezone.utc)

    @property
    def days(self):
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def start_of(self, day):
        """The first instant of ``day`` (UTC). A midnight the clocks skip starts the day at
        the first hour that exists."""
        return datetime.combine(day, time.min, tzinfo=self.zone).astimezone(timezone.utc)

    @property
    def start(self):
        return self.start_of(self.first)

    @property
    def end(self):
        return self.start_of(self.last + DAY)

    def day_of(self, instant):
        return instant.astimezone(self.zone).date()

    def offset_minutes(self, day):
        """The UTC offset at the start of ``day``: its tallies are those at this offset."""
        midnight = datetime.combine(day, time.min)
        return int(self.zone.utcoffset(midnight).total_seconds() // 60)

    def spans(self):
        """[(offset minutes, first day, last day)]: consecutive days at one offset."""
        spans = []
        for day in self.days:
            minutes = self.offset_minutes(day)
            if spans and spans[-1][0] == minutes:
                spans[-1][2] = day
            else:
                spans.append([minutes, day, day])
        return [tuple(span) for span in spans]

    def odd_hours(self):
        """[(day, from, to, sign)]: what the tallies of a day the clocks change miss (+1) or
        count from the next day (-1). They hold 24 hours from the day's start."""
        pieces = []
        for day in self.days:
            start, next_start = self.start_of(day), self.start_of(day + DAY)
            full = start + DAY
            if next_start > full:
                pieces.append((day, full, next_start, 1))
            elif next_start < full:
                pieces.append((day, next_start, full, -1))
        return pieces


def parse_range(days="", since="", until="", zone=timezone.utc, today=None):
    """The range asked for: a preset (the last 7, 30 or 90 days) or from ``since`` to ``until``;
    days in ``zone``, "today" being the reader's."""
    today = today or utcnow().astimezone(zone).date()
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
        return DayRange(first, last, zone=zone)
    try:
        count = int(days) if days else DEFAULT_DAYS
    except ValueError:
        count = 0
    if count not in PRESETS:
        raise RangeError(f"Choose the last {', '.join(map(str, PRESETS))} days, or give a first "
                         "and a last day.", "days")
    return DayRange(today - timedelta(days=count - 1), today, preset=count, zone=zone)


def _date(raw, field_name):
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise RangeError(f"{raw[:40]!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-31.",
                         field_name) from None
