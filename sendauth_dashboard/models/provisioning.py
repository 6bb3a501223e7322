"""Provisioning by the organisation's identity provider over SCIM 2.0: the bearer token it
uses, what its directory says of each person it manages, and its groups (which may give a
role)."""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .columns import UTCDateTime, in_list, utcnow
from .people import ROLES, User

# Why SCIM deactivated a person: the directory said so (``active: false`` or a delete), or
# they left the last group that gave them a role (joining one again reactivates them).
DEACTIVATED_BY = ("directory", "groups")


class ScimToken(db.Model):
    """The identity provider's bearer token: shown once, stored only as the hash of its
    secret, with a short prefix to recognise it. One is in use at a time: a new one
    (rotation) revokes the one before."""

    __tablename__ = "scim_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScimPerson(db.Model):
    """What the directory last said of one person (its SCIM User resource, less what the
    account itself holds: the id, ``active``, groups), and whether SCIM deleted them: a
    deleted person is deactivated, never removed, and SCIM no longer finds them."""

    __tablename__ = "scim_people"
    __table_args__ = (
        CheckConstraint(f"deactivated_by {in_list(DEACTIVATED_BY)}", name="deactivated_by"),
        Index("ix_scim_people_user_name_key", "user_name_key"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    # userName as the directory wrote it, and lower-cased for ``filter=userName eq "…"``.
    user_name: Mapped[str] = mapped_column(String(254))
    user_name_key: Mapped[str] = mapped_column(String(254))
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # They were a member of a group with a role: leaving the last such group deactivates them.
    role_from_groups: Mapped[bool] = mapped_column(default=False)
    deactivated_by: Mapped[str | None] = mapped_column(String(16))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class ScimGroup(db.Model):
    """A group the identity provider pushed; an admin may map it to a role (Settings →
    Sign-in): its members then have at least that role."""

    __tablename__ = "scim_groups"
    __table_args__ = (CheckConstraint(f"role IS NULL OR role {in_list(ROLES)}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(256), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScimGroupMember(db.Model):
    __tablename__ = "scim_group_members"
    __table_args__ = (Index("ix_scim_group_members_user_id", "user_id"),)

    group_id: Mapped[int] = mapped_column(ForeignKey("scim_groups.id", ondelete="CASCADE"),
                                          primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    # The member's name as the directory sent it, given back as it was.
    display: Mapped[str | None] = mapped_column(String(256))
