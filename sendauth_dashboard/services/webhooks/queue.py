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
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from ...channels.base import Notice
from ...core import event_kinds as kinds
from ...core import event_log
from ...core.secrets import SecretUnreadable, decrypt
from ...extensions import db
from ...models import User, WebhookAttempt, WebhookMessage, utcnow
from ..people import notices
from .payloads import message_row, payload
from .sending import Outcome, deliver

CLAIM_WINDOW = 200


def _due(now):
    return or_(
        and_(WebhookMessage.status == "queued", WebhookMessage.next_attempt_at <= now),
        and_(WebhookMessage.status == "sending", WebhookMessage.lease_expires_at < now),
    )


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
    oldest = (select(WebhookMessage.id)
              .where(_due(now), WebhookMessage.endpoint_id == endpoint_id)
              .order_by(WebhookMessage.next_attempt_at, WebhookMessage.id)
              .limit(1).with_for_update(skip_locked=True).scalar_subquery())
    return db.session.scalar(
        update(WebhookMessage).where(WebhookMessage.id == oldest, _due(now))
        .values(status="sending", claimed_by=owner, lease_expires_at=now + lease)
        .returning(WebhookMessage.id).execution_options(synchronize_session=False))


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


def attempt_and_claim_next(message_id, owner, then_next=True):
    """``attempt``, and (``then_next``) in the database transaction that records the outcome,
    claim the endpoint's next due message: (outcome, the next message's id or None). A sender
    with a backlog for an endpoint goes from one message to the next with one commit between
    them, not a commit, a claim of its loop, and the loop's wake-up."""
    config = current_app.config
    message = db.session.get(WebhookMessage, message_id)
    if message is None or message.status != "sending" or message.claimed_by != owner:
        db.session.rollback()
        return "lost", None
    endpoint = message.endpoint
    now = utcnow()
    if not endpoint.enabled:
        _finish(message, "cancelled", now, "The endpoint is turned off.")
        following = claim_next(owner, endpoint.id, now) if then_next else None
        db.session.commit()
        return "cancelled", following
    try:
        secrets = signing_secrets(endpoint, now)
    except SecretUnreadable as exc:
        return _record(message_id, owner, Outcome("failed", None, str(exc), 0), then_next)
    url, body, msg_id = endpoint.url, message.payload.encode(), message.msg_id
    # The claim's lease, just taken and longer than the time limit, covers the send; no
    # connection or lock is held while the receiver answers.
    db.session.commit()
    return _record(message_id, owner, deliver(url, msg_id, body, secrets, config), then_next)


def record(message_id, owner, result):
    return _record(message_id, owner, result, then_next=False)[0]


def _record(message_id, owner, result, then_next):
    config = current_app.config
    now = utcnow()
    message = db.session.get(WebhookMessage, message_id, populate_existing=True)
    if message is None or message.claimed_by != owner or message.status != "sending":
        db.session.rollback()
        return "lost", None
    endpoint = message.endpoint
    message.attempts += 1
    message.last_http_status = result.http_status
    message.last_error = None if result.outcome == "sent" else result.answer[:1000]
    db.session.add(WebhookAttempt(
        endpoint_id=endpoint.id, message_id=message.id, at=now, http_status=result.http_status,
        duration_ms=result.duration_ms, answer=result.answer[:500],
        success=result.outcome == "sent"))
    if result.outcome == "sent":
        _finish(message, "sent", now)
        endpoint.last_success_at, endpoint.failing_since = now, None
    elif result.outcome == "gone":
        _finish(message, "failed", now)
        disable(endpoint, "it answered 410 Gone", now)
    else:
        endpoint.failing_since = endpoint.failing_since or now
        _retry_or_fail(message, result, config, now)
        if (now - endpoint.failing_since).total_seconds() >= \
                config["WEBHOOK_DISABLE_AFTER_SECONDS"]:
            since = endpoint.failing_since.strftime("%Y-%m-%d %H:%M")
            disable(endpoint, f"every attempt failed since {since} UTC", now)
    db.session.flush()
    following = claim_next(owner, endpoint.id, now) if then_next and endpoint.enabled else None
    status = message.status if result.outcome != "gone" else "gone"
    db.session.commit()
    return status, following


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
