"""The JSON API's rows: API keys (a program acting for a person) and the answers kept for
``Idempotency-Key`` requests."""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .columns import UTCDateTime, utcnow
from .people import User

# What a key may be used for; a key acts with at most its owner's current role as well.
API_SCOPES = ("transactions:read", "transactions:write", "users:read", "users:write",
              "audit:read", "webhooks:manage", "routing:manage",
              "groups:manage")


class ApiKey(db.Model):
    """A key a user made for a program acting for them (``Authorization: Bearer sa_…``): shown
    once, stored only as the hash of its secret, with a short prefix to recognise it."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(64))
    # "sa_" and the first characters of the secret: how people tell their keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_from: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined")

    def usable_at(self, now):
        """Not revoked, not expired, and its owner still active."""
        return self.revoked_at is None and self.expires_at > now and self.user.active

    def __repr__(self):
        return f"<ApiKey {self.id} {self.prefix}>"


class IdempotentRequest(db.Model):
    """A POST sent with an ``Idempotency-Key``: claimed before it runs (so a second one while
    it runs is refused), then its answer kept to be given again for a day."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (
        UniqueConstraint("api_key_id", "key", name="uq_idempotent_requests_api_key_id_key"),
        Index("ix_idempotent_requests_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, path and body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # None while the first request runs.
    status_code: Mapped[int | None] = mapped_column()
    body: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict | None] = mapped_column(JSON)
