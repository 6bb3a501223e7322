"""People: accounts and roles, their passkeys and WebAuthn challenges, enrolment links and
signed-in sessions."""
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .columns import UTCDateTime, in_list, utcnow

ROLES = ("member", "requestor", "reviewer", "registrar", "admin")
ROLE_LABELS = {
    "member": "Member: answers requests, edits own preferences",
    "requestor": "Requestor: also sends requests and sees the ones they sent",
    "reviewer": "Reviewer: also sees every transaction, live",
    "registrar": "Registrar: also manages people: invitations, deactivation, enrolment links",
    "admin": "Admin: also manages settings and users",
}
# What a WebAuthn challenge is for: verifying a transaction, registering a passkey, or proving
# it is the user before a change to how they prove it or are reached.
CHALLENGE_PURPOSES = ("verify", "register", "prove", "sign_in")
# An invitation sets the password and the first passkey; a passkey link registers a passkey.
ENROLMENT_KINDS = ("invitation", "passkey")


def role_rank(role):
    return ROLES.index(role)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role {in_list(ROLES)}", name="role"),)

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
    # An admin who may still sign in with a password when single sign-on is required: the way
    # in when the identity provider is down or misconfigured (services.sign_on.policy).
    break_glass: Mapped[bool] = mapped_column(default=False, server_default=false())

    # Messaging preferences: the channels that notify this user of an authentication request.
    notify_pagerduty: Mapped[bool] = mapped_column(default=False)
    notify_email: Mapped[bool] = mapped_column(default=True)
    notify_sms: Mapped[bool] = mapped_column(default=False)
    notify_slack: Mapped[bool] = mapped_column(default=False)
    phone: Mapped[str | None] = mapped_column(String(16))
    slack_member_id: Mapped[str | None] = mapped_column(String(32))
    # What weakens the proof for a while (services.requests.risks): an admin's passkey reset,
    # the last change to how the user is reached, and to their password.
    passkeys_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contacts_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_break_glass(self):
        return self.break_glass and self.role == "admin" and self.active

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
    transaction, registering a passkey, proving it is them), single use, expiring. A sign-in
    challenge is for no user yet: whichever passkey of this site signs it says who."""

    __tablename__ = "passkey_challenges"
    __table_args__ = (
        Index("ix_passkey_challenges_transaction_id", "transaction_id"),
        CheckConstraint(f"purpose {in_list(CHALLENGE_PURPOSES)}", name="purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), default="verify", server_default="verify")
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # base64url of the random bytes the authenticator signs.
    challenge: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)



class EnrolmentLink(db.Model):
    """A link an admin issues for a user's first passkey (and, for an invitation, their
    password): single use, expiring, stored only as the hash of its token."""

    __tablename__ = "enrolment_links"
    __table_args__ = (
        CheckConstraint(f"kind {in_list(ENROLMENT_KINDS)}", name="kind"),
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
    # When the session was last used, to the minute (services.people.sign_ins): past
    # SESSION_IDLE_SECONDS without use, or SESSION_MAX_SECONDS after created_at, it has ended.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignOnIdentity(db.Model):
    """An account at the organisation's identity provider (issuer and subject) that signs in as
    a user here: linked on its first sign-in, by its verified email. Later sign-ins find the
    user by it, so an email address reused at the provider never opens someone else's account."""

    __tablename__ = "sign_on_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),
                      Index("ix_sign_on_identities_user_id", "user_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issuer: Mapped[str] = mapped_column(String(2048))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
