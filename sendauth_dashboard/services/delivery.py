"""The durable outbox: deliveries are queued with their transaction, then dispatched.

A dispatcher claims due deliveries with a lease (one UPDATE, ``FOR UPDATE SKIP LOCKED`` where
the database has it), sends each with no database connection held, and records the outcome on
the delivery, on the channel's status indicator and as an event. Retryable failures come back
with capped exponential backoff and jitter; a claim whose dispatcher died is taken again once
its lease runs out. Sending twice is harmless for PagerDuty: the dedup_key is the transaction id.
"""
import logging
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, true, update
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..models import Delivery, utcnow
from . import channels, events, integrations
from .secrets import SecretUnreadable, decrypt, encrypt

log = logging.getLogger(__name__)

RETRY_AFTER_CAP_SECONDS = 3600.0
# Expiring overdue transactions at most this often: a wake per delivery need not sweep too.
SWEEP_INTERVAL = 0.5


def enqueue(transaction, channel_names, link):
    """Queue one delivery per channel, in the caller's database transaction (the outbox)."""
    ciphertext = encrypt(link)
    return [
        Delivery(transaction=transaction, channel=name, link_ciphertext=ciphertext)
        for name in channel_names
    ]


def cancel_open(transaction_id, reason, now):
    """Queued deliveries of a transaction that is no longer pending will never be sent."""
    db.session.execute(
        update(Delivery)
        .where(Delivery.transaction_id == transaction_id, Delivery.status == "queued")
        .values(status="cancelled", completed_at=now, link_ciphertext=None, last_error=reason)
    )


def backoff_seconds(attempts, result, config, rng=random):
    """Capped exponential backoff with jitter; never sooner than a Retry-After asks."""
    base = config["DELIVERY_BACKOFF_BASE_SECONDS"]
    cap = config["DELIVERY_BACKOFF_CAP_SECONDS"]
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if result.http_status == 429:
        delay = max(delay, config["DELIVERY_RATE_LIMITED_FLOOR_SECONDS"])
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, RETRY_AFTER_CAP_SECONDS))
    return delay


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


def claim(owner, limit, now=None, lease_seconds=None, only=None, exclude=()):
    """Claim up to ``limit`` due deliveries for ``owner`` (of the ``only`` channels, or of
    all but ``exclude``); returns their ids. Commits."""
    now = now or utcnow()
    lease_seconds = lease_seconds or current_app.config["DELIVERY_LEASE_SECONDS"]
    # Lock the rows first, then update exactly those. (A single UPDATE ... WHERE id IN
    # (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) may run its subquery more than once on
    # PostgreSQL and claim more than n.)
    candidates = db.session.scalars(
        select(Delivery.id)
        .where(_due(now), _of_channels(only, exclude))
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
    """Send one claimed delivery and record what happened. Returns the outcome's name."""
    config = current_app.config
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.status != "sending" or delivery.claimed_by != owner:
        db.session.rollback()
        return "lost"
    transaction = delivery.transaction
    now = utcnow()
    if transaction.status != "pending" or transaction.expires_at <= now:
        _finish(delivery, "cancelled", now, "The transaction is no longer pending.")
        db.session.commit()
        return "cancelled"
    channel = channels.channel(delivery.channel)
    try:
        prepared = channel.prepare(transaction, decrypt(delivery.link_ciphertext))
    except channels.ChannelUnavailable as exc:
        _finish(delivery, "cancelled", now, f"Not sent: {exc}.")
        events.record("delivery.cancelled", transaction=transaction,
                      data={"channel": delivery.channel, "reason": str(exc)})
        db.session.commit()
        return "cancelled"
    except SecretUnreadable as exc:
        # No retry can help until an admin enters the secret again; say so where they look.
        _finish(delivery, "failed", now, str(exc))
        events.record("delivery.failed", transaction=transaction,
                      data={"channel": delivery.channel, "error": str(exc)})
        integrations.record_outcome(delivery.channel, success=False, error=str(exc), at=now)
        db.session.commit()
        return "failed"
    db.session.commit()  # no connection or lock is held while the provider answers
    result = channels.send(channel, prepared)
    return record_result(delivery_id, owner, result, config)


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
    data = {"channel": delivery.channel, "attempt": delivery.attempts,
            "http_status": result.http_status}
    if result.accepted:
        delivery.external_id = result.external_id
        _finish(delivery, "sent", now)
        outcome = "sent"
    elif result.outcome == "retryable" and delivery.attempts < config["DELIVERY_MAX_ATTEMPTS"]:
        delay = backoff_seconds(delivery.attempts, result, config)
        delivery.status = "queued"
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        delivery.claimed_by = None
        delivery.lease_expires_at = None
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
    integrations.record_outcome(delivery.channel, success=result.accepted, error=error, at=now)
    # The event last: on PostgreSQL it takes the event-order lock, held until the commit.
    events.record(f"delivery.{outcome}", transaction=delivery.transaction, data=data)
    db.session.commit()
    return outcome


def _finish(delivery, status, now, reason=None):
    delivery.status = status
    delivery.completed_at = now
    delivery.link_ciphertext = None
    delivery.claimed_by = None
    delivery.lease_expires_at = None
    if reason:
        delivery.last_error = reason


class Dispatcher:
    """Claims and sends due deliveries with a few worker threads; sweeps expired transactions.

    ``wake()`` makes it look at once (called after a transaction commits), so the common
    path has no polling delay; otherwise it looks again when the next delivery is due, and
    at least every ``DISPATCHER_IDLE_SECONDS`` (for deliveries queued by other processes).
    """

    def __init__(self, app, concurrency=8, name=None):
        self.app = app
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._thread = None
        self._pool = None
        self._next_sweep = 0.0

    def wake(self):
        self._wake.set()

    def start(self):
        """Run in a daemon thread of this process (the web process's default)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self.run, name="sendauth-dispatcher",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout=None):
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def run(self):
        """Loop until stopped; finishes the sends under way before returning."""
        self.app.extensions["sendauth_broker"].on_wake(self.wake)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sendauth-send")
        idle = self.app.config["DISPATCHER_IDLE_SECONDS"]
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    with self.app.app_context():
                        claimed = self.tick()
                        wait = 0 if claimed else self._idle_wait(idle)
                except SQLAlchemyError:
                    log.exception("dispatcher: database error; trying again shortly")
                    wait = idle
                if wait:
                    self._wake.wait(wait)
        finally:
            self._pool.shutdown(wait=True)

    def _idle_wait(self, idle):
        """Until the next delivery is due (and its channel's send window has room) or the
        next transaction expires; at most ``idle``."""
        from . import transactions

        limits = self.app.config["DELIVERY_RATE_LIMITS"]
        expiry_in = transactions.next_expiry_in()
        if expiry_in is not None:
            expiry_in = max(expiry_in, self._next_sweep - time.monotonic())
        waits = [next_due_in(exclude=tuple(limits)), expiry_in]
        for name, (allowed, period) in limits.items():
            due_in = next_due_in(only=(name,))
            if due_in is not None:
                waits.append(max(due_in, self._window.next_free_in(name, allowed, period)))
        return max(0.01, min([idle, *(w for w in waits if w is not None)]))

    @property
    def _window(self):
        return self.app.extensions["sendauth_send_window"]

    def claim_within_limits(self, free):
        """Claim up to ``free`` due deliveries; those of rate-limited channels only as many as
        the channel's send window has room for now."""
        limits = self.app.config["DELIVERY_RATE_LIMITS"]
        ids = claim(self.name, free, exclude=tuple(limits))
        for name, (allowed, period) in limits.items():
            room = free - len(ids)
            if room <= 0:
                break
            granted = self._window.reserve(name, allowed, period, room)
            if granted:
                claimed = claim(self.name, granted, only=(name,))
                self._window.release(name, granted - len(claimed))
                ids += claimed
        return ids

    def tick(self):
        """Expire what is overdue (at most every SWEEP_INTERVAL), then claim as many due
        deliveries as there are free slots."""
        from . import transactions

        if time.monotonic() >= self._next_sweep:
            transactions.expire_due()
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL
        free = self.concurrency - self._in_flight
        if free <= 0:
            return 0
        ids = self.claim_within_limits(free)
        for delivery_id in ids:
            with self._lock:
                self._in_flight += 1
            self._pool.submit(self._attempt, delivery_id)
        return len(ids)

    def _attempt(self, delivery_id):
        try:
            with self.app.app_context():
                attempt(delivery_id, self.name)
        except Exception:
            log.exception("dispatcher: delivery %s failed unexpectedly; it is retried when "
                          "its lease runs out", delivery_id)
        finally:
            with self._lock:
                self._in_flight -= 1
            self._wake.set()

    def run_until_idle(self):
        """For tests and the CLI: send everything due now, in this thread; returns outcomes."""
        outcomes = []
        with self.app.app_context():
            from . import transactions

            transactions.expire_due()
            while ids := self.claim_within_limits(self.concurrency):
                outcomes.extend(attempt(i, self.name) for i in ids)
        return outcomes


def dispatcher_of(app):
    """The web process's dispatcher, started on first use when DISPATCHER is "thread"."""
    dispatcher = app.extensions.get("sendauth_dispatcher")
    if dispatcher is None and app.config["DISPATCHER"] == "thread":
        with _start_lock:
            dispatcher = app.extensions.get("sendauth_dispatcher")
            if dispatcher is None:
                dispatcher = app.extensions["sendauth_dispatcher"] = Dispatcher(app)
                dispatcher.start()
    return dispatcher


_start_lock = threading.Lock()


def wake(app=None):
    """Tell the dispatchers, here and in other processes, that deliveries were queued."""
    app = app or current_app._get_current_object()
    dispatcher = dispatcher_of(app)
    if dispatcher is not None:
        dispatcher.wake()
    app.extensions["sendauth_broker"].publish_wake()
