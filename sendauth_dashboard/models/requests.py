"""Authentication requests: transactions, their deliveries (the outbox), the event log,
PagerDuty's incidents and the webhooks already taken in."""
import secrets
from datetime import datetime

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    case,
    text,
)
from sqlalchemy import event as sa_event
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .columns import EventId, UTCDateTime, in_list, utcnow
from .people import User

TRANSACTION_STATES = ("pending", "verified", "denied", "cancelled", "expired")
FINAL_TRANSACTION_STATES = TRANSACTION_STATES[1:]  # all but "pending"

# The channel names the deliveries table accepts (a check constraint, so a migration changes
# it); channels.REGISTRY is the list the app uses, and a test keeps the two the same.
DELIVERY_CHANNELS = ("pagerduty", "email", "sms", "slack")

DELIVERY_STATES = ("queued", "sending", "sent", "failed", "cancelled")
# What a delivery does: notify the user of the request, or (PagerDuty) resolve its incident.
DELIVERY_ACTIONS = ("notify", "resolve", "notice")
# PagerDuty's states of an incident, as its webhooks tell them.
INCIDENT_STATES = ("triggered", "acknowledged", "resolved")

# Indexes that exist on PostgreSQL only (name: column); migrations/env.py and the schema
# tests leave them out of the comparison on other databases.
POSTGRESQL_ONLY_INDEXES = {"ix_transactions_message_trgm": "message",
                           "ix_transactions_context_trgm": "context",
                           "ix_transactions_ticket_id_trgm": "ticket_id"}


def in_schema_of(dialect_name):
    """For Alembic's ``include_object``: whether a schema object belongs on this database."""

    def include(obj, name, type_, reflected, compare_to):
        return not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES
                    and dialect_name != "postgresql")

    return include


def new_public_id():
    """22 URL-safe characters (128 random bits), starting with a letter or a digit: one in 32
    started with "-" or "_", and a CSV cell starting with "-" is a formula to a spreadsheet
    (pages/csv_export.py quotes it, so the id in the file was not the id)."""
    while not (public_id := secrets.token_urlsafe(16))[0].isalnum():
        pass
    return public_id


class Transaction(db.Model):
    """An authentication request: a requestor asks a user to prove who they are."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(f"status {in_list(TRANSACTION_STATES)}", name="status"),
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
    # The help desk's ticket it was sent for (the API's ``ticket``): its system, id and address.
    ticket_system: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[str | None] = mapped_column(String(128), index=True)
    ticket_url: Mapped[str | None] = mapped_column(String(2048))
    # The API key that sent it, if one did: only that key is given its call-binding code.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    # Sent to an approval group: its name and threshold as they were when it was sent (the
    # group may change or go; the request does not). ``user`` is then the first member asked;
    # each member's answer is an Approval.
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("approval_groups.id", ondelete="SET NULL"))
    group_name: Mapped[str | None] = mapped_column(String(100))
    threshold: Mapped[int | None] = mapped_column()
    # What the sender handed over for its tool to act on when the request ends (the outgoing
    # webhook's data): JSON, capped (services.requests.transactions.PAYLOAD_MAX_BYTES).
    payload: Mapped[dict | list | None] = mapped_column(JSON)

    requestor: Mapped[User] = relationship(foreign_keys=[requestor_id], lazy="joined")
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    deliveries: Mapped[list["Delivery"]] = relationship(
        back_populates="transaction", order_by="Delivery.id"
    )
    approvals: Mapped[list["Approval"]] = relationship(  # noqa: F821
        back_populates="transaction", order_by="Approval.id")
    # PagerDuty's incident for it, once a webhook told of one.
    pagerduty_incident: Mapped["PagerDutyIncident | None"] = relationship(
        lazy="selectin", viewonly=True)

    # "Still pending" is one rule, in Python on a row and in SQL in a query: both
    # ``transaction.pending_at(now)`` and ``select(...).where(Transaction.pending_at(now))``.
    # A pending transaction past its expiry is overdue: expired to anyone reading it, though
    # the sweep (services.requests.transactions.expire_due) has not written that down yet.

    @hybrid_method
    def pending_at(self, now):
        """Still waiting for its user's answer at ``now``: pending, and not past its expiry."""
        return self.status == "pending" and self.expires_at > now

    @pending_at.inplace.expression
    @classmethod
    def _pending_at(cls, now):
        return and_(cls.status == "pending", cls.expires_at > now)

    @hybrid_method
    def overdue_at(self, now):
        """Pending, but past its expiry at ``now``: expired, waiting for the sweep."""
        return self.status == "pending" and self.expires_at <= now

    @overdue_at.inplace.expression
    @classmethod
    def _overdue_at(cls, now):
        return and_(cls.status == "pending", cls.expires_at <= now)

    @hybrid_method
    def status_at(self, now):
        """The status as anyone reading it at ``now`` should see it: overdue ones are expired."""
        return "expired" if self.overdue_at(now) else self.status

    @status_at.inplace.expression
    @classmethod
    def _status_at(cls, now):
        return case((cls.overdue_at(now), "expired"), else_=cls.status)

    @property
    def approvals_needed(self):
        """How many more members must verify a group request (None for one person's)."""
        if self.threshold is None:
            return None
        verified = sum(1 for a in self.approvals if a.decision == "verified")
        return max(0, self.threshold - verified)

    def __repr__(self):
        return f"<Transaction {self.public_id} {self.status}>"


sa_event.listen(Transaction.__table__, "before_create", DDL(
    "CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))


class Delivery(db.Model):
    """One channel's notification of one transaction, or (``action`` "notice") a notice to a
    user about their own account, which belongs to no transaction: a row of the durable
    outbox."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(f"status {in_list(DELIVERY_STATES)}", name="status"),
        CheckConstraint(f"channel {in_list(DELIVERY_CHANNELS)}", name="channel"),
        CheckConstraint(f"action {in_list(DELIVERY_ACTIONS)}", name="action"),
        CheckConstraint("(action = 'notice' AND transaction_id IS NULL AND user_id IS NOT NULL)"
                        " OR (action <> 'notice' AND transaction_id IS NOT NULL)",
                        name="about"),
        # A group request notifies each member (``user_id``) through each of their channels.
        UniqueConstraint("transaction_id", "channel", "action", "user_id",
                         name="uq_deliveries_transaction_id_channel_action_user_id"),
        # ... and a request to one person (no ``user_id``: NULLs never clash in the constraint
        # above) one delivery per channel and action, as before groups.
        Index("ux_deliveries_transaction_id_channel_action", "transaction_id", "channel",
              "action", unique=True, sqlite_where=text("user_id IS NULL"),
              postgresql_where=text("user_id IS NULL")),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # Insights and channel health count deliveries by when they were queued, and time the
        # sent ones and count the failed ones.
        Index("ix_deliveries_created_at", "created_at"),
        Index("ix_deliveries_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    # A notice's user, and what it says and where it goes (as they were when the change was
    # made), encrypted, kept only until the delivery is final.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notice_ciphertext: Mapped[str | None] = mapped_column(Text)
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

    transaction: Mapped[Transaction | None] = relationship(back_populates="deliveries")
    # A notice's user, or the group member a group request's notification goes to.
    user: Mapped[User | None] = relationship()

    def __repr__(self):
        return f"<Delivery {self.id} {self.channel} {self.action} {self.status}>"


class Event(db.Model):
    """Append-only: the audit log, each transaction's timeline, and the SSE stream's source."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_transaction_id_id", "transaction_id", "id"),
                      # Whether a user's passkey is their first ever (services.requests.risks).
                      Index("ix_events_actor_id_kind", "actor_id", "kind"))

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


class PagerDutyIncident(db.Model):
    """PagerDuty's incident for a transaction, as its webhooks last told it."""

    __tablename__ = "pagerduty_incidents"
    __table_args__ = (CheckConstraint(f"state {in_list(INCIDENT_STATES)}", name="state"),)

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
    """A webhook already taken in (its signed body's ``event.id``: the X-Webhook-Id header is
    not signed), so a retry or a replay of it is ignored; kept for a few days, longer than
    PagerDuty retries."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (Index("ix_webhook_receipts_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(128), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingRule(db.Model):
    """A routing rule: a request whose tags hold ``tag_key`` = ``tag_value`` goes to the rule's
    user, or its approval group (one of the two). Rules are tried in ``position`` order; the
    first that matches decides (services.approvals.tag_rules). Keys and values are kept
    lower-cased."""

    __tablename__ = "routing_rules"
    __table_args__ = (UniqueConstraint("tag_key", "tag_value", name="uq_routing_rules_tag"),
                      CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="target"))

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(unique=True)
    tag_key: Mapped[str] = mapped_column(String(64))
    tag_value: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("approval_groups.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User | None] = relationship(foreign_keys=[user_id], lazy="joined")
    group = relationship("ApprovalGroup", lazy="joined")

    @property
    def target(self):
        """Who the rule sends to, in words: a person's email, or "the group X"."""
        return self.user.email if self.user is not None else f"the group {self.group.name}"

    def __str__(self):
        return f"{self.tag_key}={self.tag_value}"
