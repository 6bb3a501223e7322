"""Webhook endpoints as admins set them up: the URL, what it wants, its secret.

The secret (``whsec_`` and base64 of 32 random bytes) is returned once, when made or rotated,
and stored encrypted. Rotating keeps the old secret signing beside the new one for
WEBHOOK_SECRET_OVERLAP_SECONDS (a day), so a receiver can switch without losing a message.
Every change is an audit event; none of them holds a secret.
"""
import base64
import secrets as random_secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...core.secrets import encrypt
from ...extensions import db
from ...models import WEBHOOK_EVENT_TYPES, WebhookAttempt, WebhookEndpoint, WebhookMessage, utcnow
from .guard import AddressRefused, check_url

# The types an admin subscribes to: webhook.test is sent only when asked for.
SUBSCRIBABLE = tuple(t for t in WEBHOOK_EVENT_TYPES if t != "webhook.test")
URL_MAX_CHARS = 2048
DESCRIPTION_MAX_CHARS = 200


class EndpointError(ServiceError):
    """An endpoint cannot be saved as asked; the message says why, ``field`` which field."""


def new_secret():
    return "whsec_" + base64.b64encode(random_secrets.token_bytes(32)).decode()


def _checked(url, description, event_types):
    url = (url or "").strip()
    if not url or len(url) > URL_MAX_CHARS:
        raise EndpointError(f"Give the receiver's URL (at most {URL_MAX_CHARS} characters), "
                            "e.g. https://tickets.example.com/hooks/sendauth.", "url")
    try:
        check_url(url, current_app.config["WEBHOOKS_ALLOW_PRIVATE_NETWORKS"])
    except AddressRefused as exc:
        raise EndpointError(str(exc), "url") from None
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX_CHARS:
        raise EndpointError(f"The description is {len(description)} characters; at most "
                            f"{DESCRIPTION_MAX_CHARS}.", "description")
    unknown = sorted(set(event_types) - set(SUBSCRIBABLE))
    if unknown:
        raise EndpointError(f"Unknown event types: {', '.join(unknown)}. Choose from "
                            f"{', '.join(SUBSCRIBABLE)}.", "events")
    if not event_types:
        raise EndpointError("Choose at least one event type to send.", "events")
    return url, description, [t for t in SUBSCRIBABLE if t in event_types]


def create(url, description, event_types, enabled, actor):
    """A new endpoint and its secret, shown this once (uncommitted)."""
    url, description, event_types = _checked(url, description, event_types)
    secret = new_secret()
    endpoint = WebhookEndpoint(url=url, description=description, event_types=event_types,
                               enabled=bool(enabled), secret_ciphertext=encrypt(secret))
    db.session.add(endpoint)
    event_log.record(kinds.WEBHOOK_ENDPOINT_CREATED, actor=actor,
                     data={"url": url, "events": event_types, "enabled": bool(enabled)})
    return endpoint, secret


def update(endpoint, url, description, event_types, enabled, actor):
    url, description, event_types = _checked(url, description, event_types)
    changes = []
    for name, value in (("url", url), ("description", description),
                        ("event_types", event_types), ("enabled", bool(enabled))):
        if getattr(endpoint, name) != value:
            shown = ", ".join(value) if isinstance(value, list) else value
            changes.append(f"{name.replace('_', ' ')}: {shown}")
            setattr(endpoint, name, value)
    if enabled and changes:
        endpoint.disabled_reason = None
        endpoint.failing_since = None
    if changes:
        event_log.record(kinds.WEBHOOK_ENDPOINT_CHANGED, actor=actor,
                         data={"url": endpoint.url, "changes": changes})
    return changes


def rotate(endpoint, actor, now=None):
    """A new secret (returned once); the old one signs beside it for the overlap."""
    now = now or utcnow()
    secret = new_secret()
    until = now + timedelta(seconds=current_app.config["WEBHOOK_SECRET_OVERLAP_SECONDS"])
    endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
    endpoint.previous_secret_expires_at = until
    endpoint.secret_ciphertext = encrypt(secret)
    event_log.record(kinds.WEBHOOK_SECRET_ROTATED, actor=actor,
                     data={"url": endpoint.url, "old_until": until.isoformat()})
    return secret


def delete(endpoint, actor):
    event_log.record(kinds.WEBHOOK_ENDPOINT_DELETED, actor=actor, data={"url": endpoint.url})
    for model in (WebhookAttempt, WebhookMessage):
        db.session.execute(db.delete(model).where(model.endpoint_id == endpoint.id))
    db.session.delete(endpoint)


def every_endpoint():
    return db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()


def find(endpoint_id):
    return db.session.get(WebhookEndpoint, endpoint_id)


def failing():
    """Endpoints an admin should look at: turned off by the sender, or failing now."""
    return db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.disabled_reason.is_not(None)
                                      | WebhookEndpoint.failing_since.is_not(None))
        .order_by(WebhookEndpoint.id)).all()


def log_of(endpoint, limit=50):
    """The endpoint's latest attempts, newest first, with their messages."""
    return db.session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id)
        .order_by(WebhookAttempt.id.desc()).limit(limit)).all()


def messages_of(endpoint, limit=50):
    return db.session.scalars(
        select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id)
        .order_by(WebhookMessage.id.desc()).limit(limit)).all()
