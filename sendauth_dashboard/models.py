"""The data model: accounts, transactions, their deliveries (the outbox), the event log and
the settings rows."""
import secrets
from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db

ROLES = ("member", "requestor", "reviewer", "admin")
ROLE_LABELS = {
    "member": "Member: answers requests, edits own preferences",
    "requestor": "Requestor: also sends requests and sees the ones they sent",
    "reviewer": "Reviewer: also sees every transaction, live",
    "admin": "Admin: also manages settings and users",
}

TRANSACTION_STATES = ("pending", "verified", "denied", "cancelled", "expired")
FINAL_TRANSACTION_STATES = ("verified", "denied", "cancelled", "expired")

# The channel names the deliveries table accepts (a check constraint, so a migration changes
# it); channels.REGISTRY is the list the app uses, and a test keeps the two the same.
DELIVERY_CHANNELS = ("pagerduty", "email", "sms", "slack")

DELIVERY_STATES = ("queued", "sending", "sent", "failed", "cancelled")
# What a delivery does: notify the user of the request, or (PagerDuty) resolve its incident.
DELIVERY_ACTIONS = ("notify", "resolve")
# PagerDuty's states of an incident, as its webhooks tell them.
INCIDENT_STATES = ("triggered", "acknowledged", "resolved")
SEVERITIES = ("critical", "error", "warning", "info")
TLS_MODES = ("none", "starttls", "tls")
# What a WebAuthn challenge is for: verifying a transaction, registering a passkey, or proving
# it is the user before a change to how they prove it or are reached.
CHALLENGE_PURPOSES = ("verify", "register", "prove")
# An invitation sets the password and the first passkey; a passkey link registers a passkey.
ENROLMENT_KINDS = ("invitation", "passkey")


# Indexes that exist on PostgreSQL only (name: column); migrations/env.py and the schema
# tests leave them out of the comparison on other databases.
POSTGRESQL_ONLY_INDEXES = {"ix_transactions_message_trgm": "message",
                           "ix_transactions_context_trgm": "context"}


def in_schema_of(dialect_name):
    """For Alembic's ``include_object``: whether a schema object belongs on this database."""

    def include(obj, name, type_, reflected, compare_to):
        return not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES
                    and dialect_name != "postgresql")

    return include


def utcnow():
    return datetime.now(timezone.utc)


def role_rank(role):
    return ROLES.index(role)


def _in(values):
    return "IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


EventId = BigInteger().with_variant(Integer, "sqlite")


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role {_in(ROLES)}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="member")
    active: Mapped[bool] = mapped_column(default=True)
    # Part of the session's user id: bumping it ends every session of this user.
    session_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Messaging preferences: the channels that notify this user of an authentication request.
    notify_pagerduty: Mapped[bool] = mapped_column(default=False)
    notify_email: Mapped[bool] = mapped_column(default=True)
    notify_sms: Mapped[bool] = mapped_column(default=False)
    notify_slack: Mapped[bool] = mapped_column(default=False)
    phone: Mapped[str | None] = mapped_column(String(16))
    slack_member_id: Mapped[str | None] = mapped_column(String(32))
    # What weakens the proof for a while (services.requests.risks): an admin's passkey reset,
    # and the last change to how the user is reached.
    passkeys_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contacts_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self):
        return self.active

    def get_id(self):
        return f"{self.id}.{self.session_version}"

    def end_sessions(self):
        self.session_version += 1

    def has_role(self, minimum):
        return role_rank(self.role) >= role_rank(minimum)

    def wants(self, channel):
        return getattr(self, f"notify_{channel}")

    def __repr__(self):
        return f"<User {self.id} {self.role}>"


def new_public_id():
    return secrets.token_urlsafe(16)


class Transaction(db.Model):
    """An authentication request: a requestor asks a user to prove who they are."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(f"status {_in(TRANSACTION_STATES)}", name="status"),
        Index("ix_transactions_status_expires_at", "status", "expires_at"),
        Index("ix_transactions_requestor_id_id", "requestor_id", "id"),
        Index("ix_transactions_user_id_id", "user_id", "id"),
        # Insights and the home page count requests by the day they were sent, and time the
        # answered ones (status first: SQLite then never prefers the status index alone).
        Index("ix_transactions_created_at", "created_at"),
        Index("ix_transactions_status_created_at", "status", "created_at"),
        # The list's text search (services/requests/transaction_list.py): trigrams answer
        # ILIKE '%word%'.
        *(Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
          .ddl_if(dialect="postgresql") for name, column in POSTGRESQL_ONLY_INDEXES.items()),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What URLs, PagerDuty's dedup_key and people see: random, so it cannot be guessed.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    requestor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    message: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # SHA-256 of the single-use link token; the token itself is never stored in plain text.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Call binding: the requestor reads the code to the user, who types it before verifying.
    # None on older requests.
    binding_code: Mapped[str | None] = mapped_column(String(3))
    # What weakens the proof (services.requests.risks), as of the last change: shown to the
    # requestor.
    risks: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")

    requestor: Mapped[User] = relationship(foreign_keys=[requestor_id], lazy="joined")
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    deliveries: Mapped[list["Delivery"]] = relationship(
        back_populates="transaction", order_by="Delivery.id"
    )
    # PagerDuty's incident for it, once a webhook told of one.
    pagerduty_incident: Mapped["PagerDutyIncident | None"] = relationship(
        lazy="selectin", viewonly=True)

    def __repr__(self):
        return f"<Transaction {self.public_id} {self.status}>"


sa_event.listen(Transaction.__table__, "before_create", DDL(
    "CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))


class Delivery(db.Model):
    """One channel's notification of one transaction: a row of the durable outbox."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(f"status {_in(DELIVERY_STATES)}", name="status"),
        CheckConstraint(f"channel {_in(DELIVERY_CHANNELS)}", name="channel"),
        CheckConstraint(f"action {_in(DELIVERY_ACTIONS)}", name="action"),
        UniqueConstraint("transaction_id", "channel", "action",
                         name="uq_deliveries_transaction_id_channel_action"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # Insights and channel health count deliveries by when they were queued, and time the
        # sent ones and count the failed ones.
        Index("ix_deliveries_created_at", "created_at"),
        Index("ix_deliveries_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16), default="notify", server_default="notify")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A dispatcher owns a "sending" delivery until its lease runs out; then another may reclaim it.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_http_status: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(255))
    # The answer link, encrypted, kept only until the delivery is final.
    link_ciphertext: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    transaction: Mapped[Transaction] = relationship(back_populates="deliveries")

    def __repr__(self):
        return f"<Delivery {self.id} {self.channel} {self.action} {self.status}>"


class Event(db.Model):
    """Append-only: the audit log, each transaction's timeline, and the SSE stream's source."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_transaction_id_id", "transaction_id", "id"),)

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    transaction: Mapped[Transaction | None] = relationship()
    actor: Mapped[User | None] = relationship()

    def __repr__(self):
        return f"<Event {self.id} {self.kind}>"


class IntegrationSettings:
    """What every integration's settings row has: one row, on or off, who changed it last.

    Secrets are stored only encrypted, in ``<name>_ciphertext`` columns.
    """

    # sort_order: id and enabled first, who changed it last at the end of each table.
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    enabled: Mapped[bool] = mapped_column(default=False, sort_order=-1)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, sort_order=1)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), sort_order=1)


class PagerDutySettings(IntegrationSettings, db.Model):
    """The organisation's PagerDuty integration: one row."""

    __tablename__ = "pagerduty_settings"
    __table_args__ = (CheckConstraint(f"severity {_in(SEVERITIES)}", name="severity"),)

    integration_key_ciphertext: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16), default="critical")
    # The webhook subscription's signing secret: PagerDuty signs what it posts back with it.
    webhook_secret_ciphertext: Mapped[str | None] = mapped_column(Text)


class EmailSettings(IntegrationSettings, db.Model):
    """The organisation's SMTP server for email: one row."""

    __tablename__ = "email_settings"
    __table_args__ = (CheckConstraint(f"tls_mode {_in(TLS_MODES)}", name="tls_mode"),)

    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(default=587)
    tls_mode: Mapped[str] = mapped_column(String(16), default="starttls")
    username: Mapped[str | None] = mapped_column(String(255))
    password_ciphertext: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(String(254))


class SmsSettings(IntegrationSettings, db.Model):
    """The organisation's Twilio account for SMS: one row."""

    __tablename__ = "sms_settings"

    account_sid: Mapped[str | None] = mapped_column(String(34))
    auth_token_ciphertext: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(16))


class SlackSettings(IntegrationSettings, db.Model):
    """The organisation's Slack app (its bot token) for direct messages: one row."""

    __tablename__ = "slack_settings"

    bot_token_ciphertext: Mapped[str | None] = mapped_column(Text)


class IntegrationStatus(db.Model):
    """What the last real sends through a channel said: the status indicator's source."""

    __tablename__ = "integration_status"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class Passkey(db.Model):
    """A WebAuthn credential a user registered: what proves it is them when they verify."""

    __tablename__ = "passkeys"
    __table_args__ = (Index("ix_passkeys_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # base64url, as the browser names it; at most 1023 bytes by the WebAuthn spec.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(64))
    transports: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    def __repr__(self):
        return f"<Passkey {self.id} of user {self.user_id}>"


class PasskeyChallenge(db.Model):
    """A WebAuthn challenge, kept on the server: for one user and one purpose (verifying one
    transaction, registering a passkey, proving it is them), single use, expiring."""

    __tablename__ = "passkey_challenges"
    __table_args__ = (
        Index("ix_passkey_challenges_transaction_id", "transaction_id"),
        CheckConstraint(f"purpose {_in(CHALLENGE_PURPOSES)}", name="purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), default="verify", server_default="verify")
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # base64url of the random bytes the authenticator signs.
    challenge: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrganisationSettings(db.Model):
    """Rules for the whole organisation: one row; no row means every default."""

    __tablename__ = "organisation_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    require_passkey: Mapped[bool] = mapped_column(Boolean, default=True)
    # Off by default: SendAuth leaves resolving an incident to a person after review.
    resolve_pagerduty_incidents: Mapped[bool] = mapped_column(Boolean, default=False,
                                                             server_default="0")
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class EnrolmentLink(db.Model):
    """A link an admin issues for a user's first passkey (and, for an invitation, their
    password): single use, expiring, stored only as the hash of its token."""

    __tablename__ = "enrolment_links"
    __table_args__ = (
        CheckConstraint(f"kind {_in(ENROLMENT_KINDS)}", name="kind"),
        Index("ix_enrolment_links_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The user had passkeys when it was issued: registering through it replaces them.
    reset: Mapped[bool] = mapped_column(default=False)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class SignIn(db.Model):
    """One signed-in session, known to the server: signing out ends it, so a copy of its
    cookie is refused afterwards. The cookie holds the token; the table only its hash."""

    __tablename__ = "sign_ins"
    __table_args__ = (Index("ix_sign_ins_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PagerDutyIncident(db.Model):
    """PagerDuty's incident for a transaction, as its webhooks last told it."""

    __tablename__ = "pagerduty_incidents"
    __table_args__ = (CheckConstraint(f"state {_in(INCIDENT_STATES)}", name="state"),)

    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), primary_key=True)
    incident_id: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[int | None] = mapped_column(BigInteger)
    html_url: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16))
    # Who acknowledged it, as PagerDuty names them (None unless acknowledged).
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    # When PagerDuty says the change that set ``state`` happened: an older event arriving
    # late goes on the timeline but does not turn the state back.
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookReceipt(db.Model):
    """A webhook already taken in (its X-Webhook-Id), so a retry of it is ignored; kept for a
    few days, longer than PagerDuty retries."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (Index("ix_webhook_receipts_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(128), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
