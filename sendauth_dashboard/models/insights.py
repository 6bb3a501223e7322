"""Per-day tallies of requests and their deliveries, so that insights over months read a few
thousand rows instead of every request."""
from datetime import date

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

# What a tally counts: requests by how they ended, answers by how long they took, notifications
# (deliveries) by channel, how they ended and took, and requests by the requestor who sent
# them and by the user asked.
TALLY_SUBJECTS = ("request", "answer", "delivery", "requestor", "user")
UNTIMED = -1  # the ``seconds`` of a tally whose outcome has no duration (cancelled, failed...)


class InsightOffset(db.Model):
    """A UTC offset, in minutes, whose days the tallies are kept for: UTC's (0) always, and
    each one a reader's time zone has needed (services.reports.tallies)."""

    __tablename__ = "insight_offsets"

    minutes: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class InsightTally(db.Model):
    """How many requests (or deliveries) sent on ``day``, a calendar day at UTC+``offset_minutes``,
    ended in ``outcome`` after ``seconds`` (whole seconds on the clock from sending to the
    answer, or to the provider's acceptance; UNTIMED for the other outcomes). Written in the
    same database transaction as the outcome, so the tallies never disagree with the rows."""

    __tablename__ = "insight_tallies"

    # The key's order is the reads' (services.reports.tallies.read): one subject's days.
    offset_minutes: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    subject: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # The channel of a delivery, the id of a requestor or user; "" for a request or answer.
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    seconds: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
