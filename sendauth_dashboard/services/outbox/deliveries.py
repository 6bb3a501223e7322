"""The durable outbox: deliveries are queued with their transaction, then dispatched.

``enqueue`` adds them in the same database transaction as the request itself, and ``wake``
(after the commit) tells the dispatchers. A dispatcher (``dispatcher.py``) claims due
deliveries with a lease (``FOR UPDATE SKIP LOCKED`` where the database has it), sends each with
no database connection held, and records the outcome on the delivery, on the channel's status
indicator and as an event. Retryable failures come back with capped exponential backoff and
jitter; a claim whose dispatcher died is taken again once its lease runs out. Sending twice is
harmless for PagerDuty: the dedup_key is the transaction id.

Most deliveries notify the user (``action`` "notify"); a PagerDuty delivery may instead resolve
the transaction's incident once the request is final (``enqueue_resolve``), and a notice tells
a user of a change to their own account (``enqueue_notice``; its events are the user's
``profile.change_announced``): the same outbox, retries, send window, status indicator.
"""
import json
import logging
import time
import traceback
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, true, update
from sqlalchemy.exc import SQLAlchemyError

from ... import channels
from ...channels import integration
from ...channels.base import Notice, addressed_to
from ...core import event_kinds as kinds
from ...core import event_log
from ...core.secrets import SecretUnreadable, decrypt, encrypt
from ...core.tokens import redact_tokens
from ...extensions import db
from ...models import Delivery, User, utcnow
from ...runtime import runtime
from ..reports import tallies
from .backoff import backoff_seconds

log = logging.getLogger(__name__)

def enqueue(transaction, channel_names, link):
    """Queue one delivery per channel, in the caller's database transaction (the outbox)."""
    ciphertext = encrypt(link)
    return [
        Delivery(transaction=transaction, channel=name, link_ciphertext=ciphertext)
        for name in channel_names
    ]


def enqueue_notice(user, channel_name, notice):
    """Queue ``notice`` to ``user`` through ``channel_name``, in the caller's database
    transaction, addressed as the user is reached now (a change about to be made to where they
    are reached does not redirect it). ChannelUnavailable when the channel cannot build it."""
    channels.channel(channel_name).prepare_notice(user, notice)
    contacts = {cls.contact.attribute: getattr(user, cls.contact.attribute)
                for cls in channels.REGISTRY.values() if cls.contact}
    delivery = Delivery(user_id=user.id, channel=channel_name, action="notice",
                        notice_ciphertext=encrypt(json.dumps({
                            "subject": notice.subject, "text": notice.text,
                            "to": {"name": user.name, "email": user.email, **contacts}})))
    db.session.add(delivery)
    return delivery


def _prepare_notice(channel, delivery):
    """The notice as queued, built for its addressee as they were reached when it was."""
    queued = json.loads(decrypt(delivery.notice_ciphertext))
    return channel.prepare_notice(User(id=delivery.user_id, **queued["to"]),
                                  Notice(queued["subject"], queued["text"]))


def record_event(delivery, outcome, data):
    """A delivery's event: on its transaction's timeline, or for a notice among its user's
    account events (``profile.change_announced``)."""
    if delivery.action != "notice":
        event_log.record(kinds.DELIVERY_OUTCOME[outcome], transaction=delivery.transaction,
                         data=data)
        return
    data = {key: value for key, value in data.items() if key != "action"}
    event_log.record(kinds.PROFILE_CHANGE_ANNOUNCED, actor=db.session.get(User, delivery.user_id),
                     data={**data, "outcome": outcome, "error": data.get("error")})


def enqueue_resolve(transaction, channel_name):
    """Queue (or queue again, after a failure) the resolve of the transaction's incident, in
    the caller's database transaction; None when one is already queued, under way or sent."""
    delivery = db.session.scalar(select(Delivery).where(
        Delivery.transaction_id == transaction.id, Delivery.channel == channel_name,
        Delivery.action == "resolve"))
    if delivery is None:
        delivery = Delivery(transaction=transaction, channel=channel_name, action="resolve")
        db.session.add(delivery)
    elif delivery.status in ("failed", "cancelled"):
        delivery.status = "queued"
        delivery.attempts = 0
        delivery.next_attempt_at = utcnow()
        delivery.completed_at = None
        delivery.last_error = None
    else:
        return None
    return delivery


def cancel_open(transaction_id, reason, now):
    """Queued notifications of a transaction that is no longer pending will never be sent."""
    cancelled = db.session.execute(
        update(Delivery)
        .where(Delivery.transaction_id == transaction_id, Delivery.status == "queued",
               Delivery.action == "notify")
        .values(status="cancelled", completed_at=now, link_ciphertext=None, last_error=reason)
        .returning(Delivery.channel, Delivery.created_at)
    ).all()
    for channel, created_at in cancelled:
        tallies.delivery_ended(channel, created_at, "cancelled", now)


def _due(now):
    return or_(
        and_(Delivery.status == "queued", Delivery.next_attempt_at <= now),
        and_(Delivery.status == "sending", Delivery.lease_expires_at < now),
    )


def _of_channels(only, exclude):
    if only is not None:
        return Delivery.channel.in_(only)
    if exclude:
        return Delivery.channel.not_in(exclude)
    return true()


def claim(owner, limit, now=None, lease_seconds=None, only=None, exclude=(), busy=()):
    """Claim up to ``limit`` due deliveries for ``owner`` (of the ``only`` channels, or of
    all but ``exclude``; none of the ids in ``busy``, which the caller is sending); returns
    their ids. Commits."""
    now = now or utcnow()
    lease_seconds = lease_seconds or current_app.config["DELIVERY_LEASE_SECONDS"]
    # Lock the rows first, then update exactly those. (A single UPDATE ... WHERE id IN
    # (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) may run its subquery more than once on
    # PostgreSQL and claim more than n.)
    candidates = db.session.scalars(
        select(Delivery.id)
        .where(_due(now), _of_channels(only, exclude), Delivery.id.not_in(busy))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not candidates:
        db.session.commit()
        return []
    claimed = db.session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(candidates), _due(now))
        .values(status="sending", claimed_by=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return claimed


def next_due_in(now=None, only=None, exclude=()):
    """Seconds until the next queued delivery is due (0 if one is due), or None if none is."""
    now = now or utcnow()
    channels_wanted = _of_channels(only, exclude)
    soonest = db.session.scalar(
        select(Delivery.next_attempt_at).where(Delivery.status == "queued", channels_wanted)
        .order_by(Delivery.next_attempt_at).limit(1)
    )
    lease = db.session.scalar(
        select(Delivery.lease_expires_at).where(Delivery.status == "sending", channels_wanted)
        .order_by(Delivery.lease_expires_at).limit(1)
    )
    times = [t for t in (soonest, lease) if t is not None]
    if not times:
        return None
    return max(0.0, (min(times) - now).total_seconds())


def attempt(delivery_id, owner):
    """Send one claimed delivery and record what happened. Returns the outcome's name.

    Whatever goes wrong unexpectedly (a bug, a message the provider's library refuses to
    build) is recorded as a failed attempt with its event, so the delivery does not stay
    ``sending`` until its lease runs out with nobody told. Database errors are not: nothing
    can be recorded then, and the lease brings the delivery back.
    """
    try:
        return _attempt(delivery_id, owner)
    except SQLAlchemyError:
        raise
    except Exception as exc:
        db.session.rollback()
        # Its text may quote the message and its link: the log gets it with tokens masked.
        log.error("delivery %s: unexpected %s while sending (%s); recorded as failed\n%s",
                  delivery_id, type(exc).__name__, redact_tokens(str(exc)),
                  "".join(traceback.format_tb(exc.__traceback__)))
        return record_unexpected(delivery_id, owner, exc)


def record_unexpected(delivery_id, owner, exc):
    now = utcnow()
    delivery = db.session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None or delivery.claimed_by != owner or delivery.status != "sending":
        db.session.rollback()
        return "lost"
    delivery.attempts += 1
    delivery.last_attempt_at = now
    error = (f"Not sent: the dashboard failed to send this {channels.label(delivery.channel)} "
             f"message ({type(exc).__name__}); it is not tried again. The server log has the "
             "details; send the request again, or another way.")
    _finish(delivery, "failed", now, error)
    record_event(delivery, "failed", {"channel": delivery.channel, "attempt": delivery.attempts,
                                 "error": error})
    db.session.commit()
    return "failed"


def _attempt(delivery_id, owner):
    config = current_app.config
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.status != "sending" or delivery.claimed_by != owner:
        db.session.rollback()
        return "lost"
    transaction = delivery.transaction
    now = utcnow()
    resolving = delivery.action == "resolve"
    if delivery.action == "notify" and not transaction.pending_at(now):
        _finish(delivery, "cancelled", now, "The transaction is no longer pending.")
        db.session.commit()
        return "cancelled"
    if resolving and _trigger_in_flight(delivery):
        # A resolve that overtook its trigger would find no incident, and the trigger would
        # then open one that stays open: wait for the trigger's answer.
        _requeue(delivery, now + timedelta(seconds=TRIGGER_WAIT_SECONDS))
        db.session.commit()
        return "waiting"
    channel = channels.channel(delivery.channel)
    about = _about(delivery)
    try:
        if resolving:
            prepared = channel.prepare_resolve(transaction.public_id)
        elif delivery.action == "notice":
            prepared = _prepare_notice(channel, delivery)
        else:
            prepared = channel.prepare(addressed_to(transaction, delivery.user_id),
                                       decrypt(delivery.link_ciphertext))
    except channels.ChannelUnavailable as exc:
        _finish(delivery, "cancelled", now, f"Not sent: {exc}.")
        record_event(delivery, "cancelled", {**about, "reason": str(exc)})
        db.session.commit()
        return "cancelled"
    except SecretUnreadable as exc:
        # No retry can help until an admin enters the secret again; say so where they look.
        _finish(delivery, "failed", now, str(exc))
        record_event(delivery, "failed", {**about, "error": str(exc)})
        integration.record_outcome(delivery.channel, success=False, error=str(exc), at=now)
        db.session.commit()
        return "failed"
    # The lease counts from now, not from the claim: waiting for a worker, the database or
    # the CPU before sending does not eat into the time the send itself may take. If the
    # delivery is no longer ours (our lease ran out and another dispatcher took it), we do
    # not send it too.
    renewed = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.claimed_by == owner,
               Delivery.status == "sending")
        .values(lease_expires_at=utcnow() + timedelta(seconds=config["DELIVERY_LEASE_SECONDS"]))
        .execution_options(synchronize_session=False)
    ).rowcount
    if not renewed:
        db.session.rollback()
        return "lost"
    db.session.commit()  # no connection or lock is held while the provider answers
    result = channels.send(channel, prepared)
    return _record_until_written(delivery_id, owner, result, config)


def _record_until_written(delivery_id, owner, result, config, clock=time.monotonic):
    """The provider has answered: its answer is kept until it is written. A database failing
    now (restarting, say) is asked again, with backoff, while the lease lasts; never the
    provider, which would send the message twice when the lease ran out."""
    deadline, delay = clock() + config["DELIVERY_LEASE_SECONDS"], 0.25
    while True:
        try:
            return record_result(delivery_id, owner, result, config)
        except SQLAlchemyError as exc:
            _rollback_quietly()
            if clock() + delay > deadline:
                raise
            log.warning("delivery %s: recording its outcome failed (%s); trying again in "
                        "%.2f s", delivery_id, type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _rollback_quietly():
    try:
        db.session.rollback()
    except SQLAlchemyError:
        db.session.remove()


def record_result(delivery_id, owner, result, config):
    now = utcnow()
    delivery = db.session.get(Delivery, delivery_id, populate_existing=True)
    if delivery.claimed_by != owner or delivery.status != "sending":
        # Our lease ran out and another dispatcher took the delivery; its record stands.
        db.session.rollback()
        return "lost"
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_http_status = result.http_status
    error = result.error
    delivery.last_error = error
    data = {**_about(delivery), "attempt": delivery.attempts,
            "http_status": result.http_status}
    if result.accepted:
        delivery.external_id = result.external_id
        _finish(delivery, "sent", now)
        outcome = "sent"
    elif result.outcome == "retryable" and delivery.attempts < config["DELIVERY_MAX_ATTEMPTS"]:
        delay = backoff_seconds(delivery.attempts, result, config)
        _requeue(delivery, now + timedelta(seconds=delay))
        data["next_attempt_at"] = delivery.next_attempt_at.isoformat()
        outcome = "retrying"
    else:
        if result.outcome == "retryable":
            error = f"Gave up after {delivery.attempts} attempts. Last error: {error}"
            delivery.last_error = error
        _finish(delivery, "failed", now)
        outcome = "failed"
    if error:
        data["error"] = error
    integration.record_outcome(delivery.channel, success=result.accepted, error=error, at=now,
                               retrying=outcome == "retrying")
    # The event last: on PostgreSQL it takes the event-order lock, held until the commit.
    record_event(delivery, outcome, data)
    db.session.commit()
    return outcome


TRIGGER_WAIT_SECONDS = 2.0


def _trigger_in_flight(delivery):
    return db.session.scalar(select(Delivery.id).where(
        Delivery.transaction_id == delivery.transaction_id, Delivery.channel == delivery.channel,
        Delivery.action == "notify", Delivery.status == "sending")) is not None


def _requeue(delivery, at):
    delivery.status = "queued"
    delivery.next_attempt_at = at
    delivery.claimed_by = None
    delivery.lease_expires_at = None


def _about(delivery):
    """What an event about a delivery says it was: its channel, a resolve as such, and the
    member a group request's notification went to."""
    if delivery.action != "notify":
        return {"channel": delivery.channel, "action": delivery.action}
    if delivery.user_id is None:
        return {"channel": delivery.channel}
    member = db.session.get(User, delivery.user_id)
    return {"channel": delivery.channel, "member_id": member.id, "member": member.name}


def _finish(delivery, status, now, reason=None):
    if delivery.action == "notify":
        tallies.delivery_ended(delivery.channel, delivery.created_at, status, now)
    delivery.status = status
    delivery.completed_at = now
    delivery.link_ciphertext = None
    delivery.notice_ciphertext = None
    delivery.claimed_by = None
    delivery.lease_expires_at = None
    if reason:
        delivery.last_error = reason


def wake():
    """Tell the dispatchers, here and in other processes, that deliveries were queued."""
    state = runtime()
    if state.dispatcher is not None:
        state.dispatcher.wake()
    state.broker.publish_wake()
