"""The organisation's settings: one row per integration (secrets only encrypted), each
channel's status indicator, and the organisation's rules."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .columns import UTCDateTime, in_list

SEVERITIES = ("critical", "error", "warning", "info")
TLS_MODES = ("none", "starttls", "tls")


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
    __table_args__ = (CheckConstraint(f"severity {in_list(SEVERITIES)}", name="severity"),)

    integration_key_ciphertext: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16), default="critical")
    # The webhook subscription's signing secret: PagerDuty signs what it posts back with it.
    webhook_secret_ciphertext: Mapped[str | None] = mapped_column(Text)


class EmailSettings(IntegrationSettings, db.Model):
    """The organisation's SMTP server for email: one row."""

    __tablename__ = "email_settings"
    __table_args__ = (CheckConstraint(f"tls_mode {in_list(TLS_MODES)}", name="tls_mode"),)

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


class MessageTemplates(db.Model):
    """The organisation's own words for a request's email, SMS and Slack message: one row; a
    column left empty (or no row) means SendAuth's default (services.messages.templates)."""

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_subject: Mapped[str | None] = mapped_column(Text)
    email_body: Mapped[str | None] = mapped_column(Text)
    sms_body: Mapped[str | None] = mapped_column(Text)
    slack_text: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class SignInSettings(db.Model):
    """Single sign-on through the organisation's OpenID Connect provider: one row; no row, or
    no issuer, means it is off. The endpoints are what the issuer's discovery document said
    when an admin last saved (services.sign_on.discovery)."""

    __tablename__ = "sign_in_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str | None] = mapped_column(String(2048))
    client_id: Mapped[str | None] = mapped_column(String(255))
    client_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    allowed_domains: Mapped[list] = mapped_column(JSON, default=list)
    button_label: Mapped[str | None] = mapped_column(String(64))
    # A claim of the ID token (e.g. groups) and {its value: our role}; none mapped: member.
    role_claim: Mapped[str | None] = mapped_column(String(64))
    role_map: Mapped[dict] = mapped_column(JSON, default=dict)
    require_sso: Mapped[bool] = mapped_column(Boolean, default=False)
    authorization_endpoint: Mapped[str | None] = mapped_column(String(2048))
    token_endpoint: Mapped[str | None] = mapped_column(String(2048))
    jwks_uri: Mapped[str | None] = mapped_column(String(2048))
    signing_algorithms: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
