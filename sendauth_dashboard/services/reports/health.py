"""Is the service working? Channel health, who can be reached, what is pending and failing.

What the home page, the menu's mark on Channels, the channels overview, the users page and
the admin's checklist show. Counts are SQL aggregates; people are few enough to route one by
one (with the organisation's settings read once).
"""
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import exists, func, select

from ... import channels
from ...extensions import db
from ...models import (
    FINAL_TRANSACTION_STATES,
    ApprovalGroupMember,
    Delivery,
    IntegrationStatus,
    Passkey,
    RoutingRule,
    Transaction,
    User,
    utcnow,
)
from ..requests import routing
from ..webhooks import endpoints
from . import organisation

RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class ChannelHealth:
    channel: str
    label: str
    enabled: bool
    problem: str | None          # why nothing can be sent through it now, or None
    state: str                   # "success", "retrying", "error" or "never" (the last send)
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    failures_24h: int

    @property
    def in_error(self):
        """On, and its last send failed: people are not being notified through it."""
        return self.enabled and self.state == "error"

    @property
    def retrying(self):
        """On, and its last send is being tried again (a 429, a 5xx, a timeout): late, not
        lost, unless the retries run out."""
        return self.enabled and self.state == "retrying"


def channel_health(now=None):
    now = now or utcnow()
    statuses = {row.channel: row for row in db.session.scalars(select(IntegrationStatus))}
    failures = dict(db.session.execute(
        select(Delivery.channel, func.count())
        .where(Delivery.status == "failed", Delivery.created_at >= now - RECENT)
        .group_by(Delivery.channel)
    ).all())
    health = []
    for name in channels.names():
        status = statuses.get(name)
        outcome = status.last_outcome if status is not None else None
        health.append(ChannelHealth(
            channel=name, label=channels.label(name),
            enabled=bool(channels.channel(name).settings_row().enabled),
            problem=channels.problem(name),
            state=outcome if outcome in ("success", "retrying", "error") else "never",
            last_success_at=status.last_success_at if status else None,
            last_error_at=status.last_error_at if status else None,
            last_error=status.last_error if status else None,
            failures_24h=failures.get(name, 0),
        ))
    return health


def channels_in_error():
    """The channels that are on and whose last send failed (one small query)."""
    return channel_troubles()[0]


def channels_retrying():
    """The channels that are on and whose last send is being tried again."""
    return channel_troubles()[1]


def channel_troubles():
    """(the channels in error, the channels retrying): those that are on whose last send
    failed, or is being tried again; one small query for both (the menu asks on every
    admin's page)."""
    outcomes = dict(db.session.execute(
        select(IntegrationStatus.channel, IntegrationStatus.last_outcome)
        .where(IntegrationStatus.last_outcome.in_(("error", "retrying")))).all())
    on = [name for name in channels.names()
          if name in outcomes and channels.channel(name).settings_row().enabled]
    return ([n for n in on if outcomes[n] == "error"],
            [n for n in on if outcomes[n] == "retrying"])


# -- who can be reached ---------------------------------------------------------------------

@dataclass(frozen=True)
class Reach:
    """Whether a request can be sent to this person, and through what."""

    channels: tuple
    passkeys: int
    newest_passkey_at: datetime | None
    why_not: str | None          # None when they can be sent a request

    @property
    def reachable(self):
        return self.why_not is None


def passkey_counts(user_ids=None):
    """user id -> (how many passkeys, when the newest was registered); of ``user_ids`` only,
    when given (one person's home need not count everyone's)."""
    query = select(Passkey.user_id, func.count(), func.max(Passkey.created_at))
    if user_ids is not None:
        query = query.where(Passkey.user_id.in_(user_ids))
    return {user_id: (count, newest) for user_id, count, newest in db.session.execute(
        query.group_by(Passkey.user_id)).all()}


FEW = 50  # people whose passkeys are counted by id; more, and every passkey is counted at once


def reach_of(users):
    """user id -> Reach, for each of ``users``."""
    problems = routing.organisation_problems()
    needs_passkey = organisation.requires_passkey()
    keys = passkey_counts([u.id for u in users] if len(users) <= FEW else None)
    result = {}
    for user in users:
        route = routing.route(user, problems)
        count, newest = keys.get(user.id, (0, None))
        why = None
        if not user.active:
            why = "deactivated"
        elif not route.channels:
            # Why each channel they chose does not work; the ones they turned off go unsaid.
            reasons = [f"{channels.label(c)}: {reason}" for c, reason in route.skipped.items()
                       if user.wants(c)]
            why = "no channel reaches them" + (": " + "; ".join(reasons) if reasons else "")
        elif needs_passkey and count == 0:
            why = "no passkey, and the organisation requires one to verify"
        result[user.id] = Reach(route.channels, count, newest, why)
    return result


def active_users():
    return db.session.scalars(select(User).where(User.active.is_(True))).all()


def expected_to_answer(people):
    """The ids of those of ``people`` who are expected to answer requests: every member (the
    role whose work is answering), and anyone above it who has been sent a request, whom a
    routing rule names, or who is in an approval group. A requestor, reviewer, registrar or
    admin who never receives requests is not missing a channel."""
    others = [u.id for u in people if u.role != "member"]
    answering = set(db.session.scalars(select(User.id).where(
        User.id.in_(others),
        exists().where(Transaction.user_id == User.id)
        | exists().where(RoutingRule.user_id == User.id)
        | exists().where(ApprovalGroupMember.user_id == User.id),
    )).all()) if others else set()
    return {u.id for u in people if u.role == "member"} | answering


def unreachable_users():
    """Active people expected to answer who cannot be sent a request now, by name."""
    people = active_users()
    expected = expected_to_answer(people)
    people = [u for u in people if u.id in expected]
    reach = reach_of(people)
    return sorted((u for u in people if not reach[u.id].reachable), key=lambda u: u.name)


def nobody_reachable_has_a_passkey():
    """True when the organisation requires a passkey and nobody a channel reaches has one."""
    if not organisation.requires_passkey():
        return False
    people = active_users()
    problems = routing.organisation_problems()
    keys = passkey_counts()
    routed = [u for u in people if routing.route(u, problems).channels]
    return not any(keys.get(u.id) for u in routed)


# -- right now --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RightNow:
    pending: int
    oldest_pending: Transaction | None
    today: dict                  # state -> count of requests sent today (UTC)
    retrying: int                # deliveries waiting to be tried again after a failure
    failed_24h: int              # deliveries that failed in the last 24 hours
    in_error: list               # ChannelHealth of the channels in error
    retrying_channels: list      # ChannelHealth of the channels whose last send is retried
    unreachable: list            # Users who cannot be sent a request
    webhooks: list = ()          # webhook endpoints failing now, or turned off by the sender

    @property
    def time_left(self):
        if self.oldest_pending is None:
            return None
        return max(timedelta(0), self.oldest_pending.expires_at - utcnow())


def right_now(now=None):
    """The reviewer's and admin's home: what is pending and what is failing, now."""
    now = now or utcnow()
    pending_now = Transaction.pending_at(now)
    pending = db.session.scalar(select(func.count()).select_from(Transaction).where(pending_now))
    oldest = db.session.scalars(
        select(Transaction).where(pending_now).order_by(Transaction.created_at, Transaction.id)
        .limit(1)
    ).first()
    midnight = datetime.combine(now.astimezone(timezone.utc).date(), time.min, tzinfo=timezone.utc)
    status = Transaction.status_at(now)
    today = {state: 0 for state in FINAL_TRANSACTION_STATES}
    today.update(db.session.execute(
        select(status, func.count()).where(Transaction.created_at >= midnight)
        .group_by(status)
    ).all())
    today.pop("pending", None)
    retrying = db.session.scalar(
        select(func.count()).select_from(Delivery)
        .where(Delivery.status.in_(("queued", "sending")), Delivery.attempts > 0))
    failed = db.session.scalar(
        select(func.count()).select_from(Delivery)
        .where(Delivery.status == "failed", Delivery.created_at >= now - RECENT))
    health = channel_health(now)
    return RightNow(
        pending=pending, oldest_pending=oldest, today=today, retrying=retrying,
        failed_24h=failed, in_error=[h for h in health if h.in_error],
        retrying_channels=[h for h in health if h.retrying],
        unreachable=unreachable_users(), webhooks=endpoints.failing(),
    )
