"""Outgoing webhooks: the endpoints admins set up, the messages queued for them (an outbox of
their own, beside the channels' deliveries) and each attempt to send one (the delivery log)."""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .columns import UTCDateTime, in_list, utcnow

WEBHOOK_EVENT_TYPES = (
    "transaction.created", "transaction.verified", "transaction.denied",
    "transaction.cancelled", "transaction.expired", "transaction.undeliverable",
    "user.created", "user.deactivated", "user.passkey_added", "user.passkey_removed",
    "user.contact_changed", "webhook.test",
)
WEBHOOK_MESSAGE_STATES = ("queued", "sending", "sent", "failed", "cancelled")


class WebhookEndpoint(db.Model):
    """Where an admin wants events sent: a URL, the event types, and its signing secret
    (encrypted; the one before a rotation still signs until ``previous_secret_expires_at``)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Why it was turned off by the sender (a 410, three days of failures); None otherwise.
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The first failure since the last success: every attempt failed from then on.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def wants(self, event_type):
        return self.enabled and (event_type in self.event_types or event_type == "webhook.test")

    def __repr__(self):
        return f"<WebhookEndpoint {self.id} {self.url}>"


class WebhookMessage(db.Model):
    """One event for one endpoint: queued in the database transaction of the event, sent (and
    retried) with the same ``msg_id`` (the ``webhook-id`` header) until it is answered 2xx."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        CheckConstraint(f"status {in_list(WEBHOOK_MESSAGE_STATES)}", name="status"),
        Index("ix_webhook_messages_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_messages_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id",
                                                        ondelete="CASCADE"))
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    # The body exactly as signed and sent: the same bytes on every retry and replay.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_http_status: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(1000))

    endpoint: Mapped[WebhookEndpoint] = relationship()


class WebhookAttempt(db.Model):
    """One try at sending a message: the delivery log of its endpoint."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint_id_id", "endpoint_id", "id"),
                      Index("ix_webhook_attempts_message_id", "message_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id",
                                                        ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("webhook_messages.id",
                                                       ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    http_status: Mapped[int | None] = mapped_column()
    duration_ms: Mapped[int] = mapped_column(default=0)
    # The start of the answer (capped, redacted), or what went wrong before one came.
    answer: Mapped[str] = mapped_column(String(500), default="")
    success: Mapped[bool] = mapped_column(default=False)

    message: Mapped[WebhookMessage] = relationship()
