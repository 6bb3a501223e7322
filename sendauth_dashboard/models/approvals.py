"""Approval groups: a name, members and a threshold (Settings → Approval groups); and each
member's answer to a request sent to a group, as the group was when it was sent."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .columns import UTCDateTime, in_list, utcnow
from .people import User

GROUP_NAME_MAX_CHARS = 100
# What a member's ballot says: nothing yet, or their answer.
APPROVAL_DECISIONS = ("verified", "denied")


class ApprovalGroup(db.Model):
    """A group a request can be sent to: approved once ``threshold`` members verify."""

    __tablename__ = "approval_groups"
    __table_args__ = (CheckConstraint("threshold >= 1", name="threshold"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(GROUP_NAME_MAX_CHARS), unique=True)
    threshold: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    members: Mapped[list[User]] = relationship(
        secondary="approval_group_members", order_by="User.name", lazy="selectin")

    def __str__(self):
        return self.name


class ApprovalGroupMember(db.Model):
    __tablename__ = "approval_group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("approval_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class Approval(db.Model):
    """One member's part in a request sent to a group: written when it is sent (the group's
    members then), with the member's own single-use link (its hash), then their answer. A
    member who was not asked (the requestor, or one no channel reaches) has no link and
    ``not_asked`` says why."""

    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint(f"decision {in_list(APPROVAL_DECISIONS)}", name="decision"),
        UniqueConstraint("transaction_id", "user_id", name="uq_approvals_transaction_id_user_id"),
        Index("ix_approvals_transaction_id", "transaction_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    not_asked: Mapped[str | None] = mapped_column(String(200))
    decision: Mapped[str | None] = mapped_column(String(16))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    proof: Mapped[str | None] = mapped_column(String(16))

    user: Mapped[User] = relationship(lazy="joined")
    transaction = relationship("Transaction", back_populates="approvals")
