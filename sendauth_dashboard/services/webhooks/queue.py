"""The webhook outbox: claiming due messages, sending one, recording what came of it.

Like the channels' deliveries (``services.outbox.deliveries``), a message is claimed with a
lease, sent with no database connection held, and a claim whose sender died is taken again
once its lease runs out: the receiver gets it again with the same ``webhook-id``. Unlike them,
failures follow Standard Webhooks' schedule (WEBHOOK_RETRY_SCHEDULE, with jitter; a
``Retry-After`` is honoured), a 410 turns the endpoint off, and so do three days in which every
attempt failed; admins are told in the audit log, on the home page and through their channels
(email where it is set up).
"""
import random
import socket
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, insert, or_, select, update

from ...channels.base import Notice
from ...core import event_kinds as kinds
from ...core import event_log
from ...core.secrets import SecretUnreadable, decrypt
from ...extensions import db
from ...models import User, WebhookAttempt, WebhookEndpoint, WebhookMessage, utcnow
from ..outbox.loop import owners_that_died
from ..people import notices
from .payloads import message_row, payload
from .sending import Outcome, deliver

CLAIM_WINDOW = 200
ATTEMPT_ANSWER_CHARS = 500  # the start of a receiver's answer kept in the delivery log
# The tables themselves, for the statements every message runs: Core statements, without the
# ORM's handling of each (a third of the sender's time per message went to it).
MESSAGES, ENDPOINTS, ATTEMPTS = (WebhookMessage.__table__, WebhookEndpoint.__table__,
                                 WebhookAttempt.__table__)


def _due(now, messages=WebhookMessage):
    return or_(
        and_(messages.status == "queued", messages.next_attempt_at <= now),
        and_(messages.status == "sending", messages.lease_expires_at < now),
    )


def take_back_from_the_dead(host=None, alive=None, now=None):
    """Messages that a sender of this host held when its process ended (killed, crashed): due
    again at once, with the same webhook-id (receivers deduplicate on it), instead of after
    their lease (a minute in which the endpoint heard nothing). Commits; returns how many."""
    host, now = host or socket.gethostname(), now or utcnow()
    owners = db.session.scalars(select(WebhookMessage.claimed_by).distinct().where(
        WebhookMessage.status == "sending",
        WebhookMessage.claimed_by.startswith(f"{host}:", autoescape=True))).all()
    dead = owners_that_died(owners, host, alive)
    taken = db.session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.status == "sending", WebhookMessage.claimed_by.in_(dead))
        .values(lease_expires_at=now)
        .execution_options(synchronize_session=False)).rowcount if dead else 0
    db.session.commit()
    return taken


def claim(owner, limit, busy_endpoints=(), now=None):
    """Claim up to ``limit`` due messages, at most one per endpoint and none of an endpoint in
    ``busy_endpoints`` (one slow endpoint holds one sender, never the others). Commits."""
    now = now or utcnow()
    rows = db.session.execute(
        select(WebhookMessage.id, WebhookMessage.endpoint_id)
        .where(_due(now), WebhookMessage.endpoint_id.not_in(busy_endpoints))
        .order_by(WebhookMessage.next_attempt_at, WebhookMessage.id)
        .limit(CLAIM_WINDOW).with_for_update(skip_locked=True)).all()
    chosen = {}
    for message_id, endpoint_id in rows:
        if endpoint_id not in chosen and len(chosen) < limit:
            chosen[endpoint_id] = message_id
    if not chosen:
        db.session.commit()
        return []
    lease = timedelta(seconds=current_app.config["WEBHOOK_LEASE_SECONDS"])
    claimed = db.session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id.in_(chosen.values()), _due(now))
        .values(status="sending", claimed_by=owner, lease_expires_at=now + lease)
        .returning(WebhookMessage.id, WebhookMessage.endpoint_id)
        .execution_options(synchronize_session=False)).all()
    db.session.commit()
    return [(row[0], row[1]) for row in claimed]


def claim_next(owner, endpoint_id, now):
    """Claim ``endpoint_id``'s next due message for ``owner`` in the caller's database
    transaction; its id, or None. One statement: the oldest due row, locked and skipped by
    other senders as ``claim``'s are, is leased in the same UPDATE."""
    lease = timedelta(seconds=current_app.config["WEBHOOK_LEASE_SECONDS"])
    m = MESSAGES.c
    oldest = (select(m.id).where(_due(now, m), m.endpoint_id == endpoint_id)
              .order_by(m.next_attempt_at, m.id)
              .limit(1).with_for_update(skip_locked=True).scalar_subquery())
    return db.session.scalar(
        update(MESSAGES).where(m.id == oldest, _due(now, m))
        .values(status="sending", claimed_by=owner, lease_expires_at=now + lease)
        .returning(m.id))


def next_due_in(now=None, busy_endpoints=()):
    """Seconds until the next message is due (0 if one is), or None. Messages of
    ``busy_endpoints`` are left out: the sender sending to one takes its next itself."""
    now = now or utcnow()
    free = WebhookMessage.endpoint_id.not_in(busy_endpoints)
    times = [db.session.scalar(select(WebhookMessage.next_attempt_at).where(
                 WebhookMessage.status == "queued", free).order_by(WebhookMessage.next_attempt_at)
                 .limit(1)),
             db.session.scalar(select(WebhookMessage.lease_expires_at).where(
                 WebhookMessage.status == "sending", free)
                 .order_by(WebhookMessage.lease_expires_at).limit(1))]
    times = [t for t in times if t is not None]
    return None if not times else max(0.0, (min(times) - now).total_seconds())


def signing_secrets(endpoint, now):
    """The current secret, and the one before a rotation while its overlap lasts."""
    found = [decrypt(endpoint.secret_ciphertext)]
    if endpoint.previous_secret_ciphertext and endpoint.previous_secret_expires_at and \
            endpoint.previous_secret_expires_at > now:
        found.append(decrypt(endpoint.previous_secret_ciphertext))
    return found


def attempt(message_id, owner):
    """Send one claimed message and record it; returns the outcome's name."""
    return attempt_and_claim_next(message_id, owner, then_next=False)[0]


def attempt_and_claim_next(message_id, owner, then_next=True, found=None):
    """``attempt``, and (``then_next``, after a success) in the database transaction that
    records it, claim the endpoint's next due message and read what sending it needs:
    (outcome, that, or None). Given back as ``found`` with its ``id``, it is sent with
    nothing read first. A sender with a backlog for an endpoint goes from one message to the
    next with one commit between them, not three, a claim of its loop and its wake-up."""
    config = current_app.config
    now = utcnow()
    found = found or db.session.execute(_TO_SEND.where(MESSAGES.c.id == message_id)).first()
    if found is None or found.status != "sending" or found.claimed_by != owner:
        db.session.rollback()
        return "lost", None
    if not found.enabled:
        _finish(db.session.get(WebhookMessage, message_id), "cancelled", now,
                "The endpoint is turned off.")
        following = _next(owner, found.endpoint_id, now) if then_next else None
        db.session.commit()
        return "cancelled", following
    try:
        secrets = signing_secrets(found, now)
    except SecretUnreadable as exc:
        return _record(message_id, owner, Outcome("failed", None, str(exc), 0), then_next)
    # The claim's lease, just taken and longer than the time limit, covers the send; no
    # connection or lock is held while the receiver answers.
    db.session.commit()
    result = deliver(found.url, found.msg_id, found.payload.encode(), secrets, config)
    return _record(message_id, owner, result, then_next)


# What sending a message needs, read in one query: the message's claim, and its endpoint.
_TO_SEND = (select(MESSAGES.c.id, MESSAGES.c.status, MESSAGES.c.claimed_by, MESSAGES.c.payload,
                   MESSAGES.c.msg_id, MESSAGES.c.endpoint_id, ENDPOINTS.c.url,
                   ENDPOINTS.c.enabled, ENDPOINTS.c.secret_ciphertext,
                   ENDPOINTS.c.previous_secret_ciphertext,
                   ENDPOINTS.c.previous_secret_expires_at)
            .join(ENDPOINTS, ENDPOINTS.c.id == MESSAGES.c.endpoint_id))


def _next(owner, endpoint_id, now):
    """The endpoint's next due message, claimed, with what sending it needs; or None."""
    message_id = claim_next(owner, endpoint_id, now)
    if message_id is None:
        return None
    return db.session.execute(_TO_SEND.where(MESSAGES.c.id == message_id)).first()


def _record(message_id, owner, result, then_next=False):
    """Record an attempt's outcome: a success in ``_record_sent``; here, a failure."""
    if result.outcome == "sent":
        return _record_sent(message_id, owner, result, then_next)
    config = current_app.config
    now = utcnow()
    message = db.session.get(WebhookMessage, message_id, populate_existing=True)
    if message is None or message.claimed_by != owner or message.status != "sending":
        db.session.rollback()
        return "lost", None
    endpoint = message.endpoint
    message.attempts += 1
    message.last_http_status = result.http_status
    message.last_error = result.answer[:1000]
    db.session.add(WebhookAttempt(
        endpoint_id=endpoint.id, message_id=message.id, at=now, http_status=result.http_status,
        duration_ms=result.duration_ms, answer=result.answer[:ATTEMPT_ANSWER_CHARS],
        success=False))
    if result.outcome == "gone":
        _finish(message, "failed", now)
        disable(endpoint, "it answered 410 Gone", now)
    else:
        endpoint.failing_since = endpoint.failing_since or now
        _retry_or_fail(message, result, config, now)
        if (now - endpoint.failing_since).total_seconds() >= \
                config["WEBHOOK_DISABLE_AFTER_SECONDS"]:
            since = endpoint.failing_since.strftime("%Y-%m-%d %H:%M")
            disable(endpoint, f"every attempt failed since {since} UTC", now)
    status = message.status if result.outcome != "gone" else "gone"
    db.session.commit()
    # No next claim after a failure: an endpoint that fails or times out holds its thread
    # for one message at a time, as before; the loop's claim (oldest first) decides again.
    return status, None


def _record_sent(message_id, owner, result, then_next):
    """The common outcome in three statements (and the next claim), without loading rows."""
    now = utcnow()
    m = MESSAGES.c
    endpoint_id = db.session.scalar(
        update(MESSAGES)
        .where(m.id == message_id, m.claimed_by == owner, m.status == "sending")
        .values(status="sent", completed_at=now, claimed_by=None, lease_expires_at=None,
                attempts=m.attempts + 1, last_http_status=result.http_status, last_error=None)
        .returning(m.endpoint_id))
    if endpoint_id is None:
        db.session.rollback()
        return "lost", None
    db.session.execute(insert(ATTEMPTS).values(
        endpoint_id=endpoint_id, message_id=message_id, at=now, http_status=result.http_status,
        duration_ms=result.duration_ms, answer=result.answer[:ATTEMPT_ANSWER_CHARS],
        success=True))
    db.session.execute(update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id)
                       .values(last_success_at=now, failing_since=None))
    following = _next(owner, endpoint_id, now) if then_next else None
    db.session.commit()
    return "sent", following


def _retry_or_fail(message, result, config, now, rng=random):
    schedule = config["WEBHOOK_RETRY_SCHEDULE"]
    if message.attempts >= len(schedule):
        _finish(message, "failed", now)
        return
    delay = schedule[message.attempts] * rng.uniform(0.9, 1.1)
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, config["WEBHOOK_RETRY_AFTER_CAP_SECONDS"]))
    message.status = "queued"
    message.next_attempt_at = now + timedelta(seconds=delay)
    message.claimed_by = None
    message.lease_expires_at = None


def disable(endpoint, reason, now):
    """Turn the endpoint off, cancel what is queued for it, and tell the admins."""
    if not endpoint.enabled:
        return
    endpoint.enabled = False
    endpoint.disabled_reason = f"Turned off {now:%Y-%m-%d %H:%M} UTC: {reason}."
    db.session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.status == "queued")
        .values(status="cancelled", completed_at=now, last_error="The endpoint was turned off.")
        .execution_options(synchronize_session=False))
    event_log.record(kinds.WEBHOOK_ENDPOINT_DISABLED, data={"url": endpoint.url,
                                                            "reason": reason})
    notice = Notice(subject="A SendAuth webhook endpoint was turned off",
                    text=f"SendAuth stopped sending webhooks to {endpoint.url}: {reason}. "
                         "Fix the receiver, then turn the endpoint on again under Settings → "
                         "Webhooks; its deliveries can be replayed from its log.")
    for admin in db.session.scalars(select(User).where(User.role == "admin", User.active)):
        notices.announce(admin, notice)


def _finish(message, status, now, reason=None):
    message.status = status
    message.completed_at = now
    message.claimed_by = None
    message.lease_expires_at = None
    if reason:
        message.last_error = reason


def queue_test(endpoint):
    """A ``webhook.test`` message for ``endpoint`` (uncommitted)."""
    body = payload("webhook.test", {"endpoint_id": endpoint.id,
                                    "description": endpoint.description})
    row = WebhookMessage(**message_row(endpoint.id, "webhook.test", body))
    db.session.add(row)
    return row


def replay(message):
    """Send ``message`` again (the same webhook-id and body, signed with the current secret);
    False while it is still queued or being sent."""
    if message.status in ("queued", "sending"):
        return False
    message.status = "queued"
    message.next_attempt_at = utcnow()
    message.completed_at = None
    return True


def endpoint_health(endpoint):
    """What the page says of an endpoint: on, failing since when, last success."""
    return {"enabled": endpoint.enabled, "last_success_at": endpoint.last_success_at,
            "failing_since": endpoint.failing_since,
            "disabled_reason": endpoint.disabled_reason}
