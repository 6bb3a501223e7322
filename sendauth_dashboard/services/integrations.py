"""Integration settings rows and each integration's status indicator.

Every integration (PagerDuty, email, SMS, Slack) is one typed settings row described by an
``Integration``: its plain settings, the one secret it keeps encrypted, and what it needs
before it can be enabled. Saving, removing the secret, masking it and saying why the
organisation cannot send through it are the same rules for all of them.
"""
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..extensions import db
from ..models import (
    CHANNEL_LABELS,
    SEVERITIES,
    EmailSettings,
    IntegrationStatus,
    PagerDutySettings,
    SlackSettings,
    SmsSettings,
    utcnow,
)
from . import events, pagerduty, slack, smtp, twilio
from .secrets import SecretUnreadable, decrypt, encrypt, mask

MAX_ERROR_LENGTH = 2000


_INSERT = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


def _get_or_create(model, key, **values):
    """The row with primary key ``key``, created if missing, for a change about to be made.

    INSERT ... ON CONFLICT DO NOTHING, in the caller's transaction: two processes racing
    both end with the one row, and a change that is rolled back leaves no row behind. (A
    savepoint would not: on SQLite its release commits when it opened the transaction.)
    """
    row = db.session.get(model, key)
    if row is not None:
        return row
    insert = _INSERT[db.session.get_bind().dialect.name]
    db.session.execute(insert(model).values(**values).on_conflict_do_nothing())
    return db.session.get(model, key)


def _default_row(model, **key):
    """An unsaved row with the columns' defaults, for reading settings nobody has saved yet."""
    defaults = {c.key: c.default.arg for c in model.__table__.columns
                if c.default is not None and c.default.is_scalar}
    return model(**{**defaults, **key})


@dataclass(frozen=True)
class StatusView:
    """What the status indicator shows: Success, Error (with the provider's text), Not yet invoked."""

    state: str
    label: str
    at: datetime | None = None
    error: str | None = None
    last_success_at: datetime | None = None


def status_view(channel):
    row = db.session.get(IntegrationStatus, channel)
    if row is None or row.last_outcome is None:
        return StatusView("never", "Not yet invoked")
    if row.last_outcome == "success":
        return StatusView("success", "Success", at=row.last_success_at,
                          last_success_at=row.last_success_at)
    return StatusView("error", "Error", at=row.last_error_at, error=row.last_error,
                      last_success_at=row.last_success_at)


def has_been_invoked(channel):
    return db.session.scalar(
        select(IntegrationStatus.last_attempt_at).where(IntegrationStatus.channel == channel)
    ) is not None


STATUS_REFRESH_SECONDS = 1.0


def _status_writes():
    """What this process last wrote to each status row of this app, and when (monotonic)."""
    return current_app.extensions.setdefault("sendauth_status_writes", {})


def record_outcome(channel, *, success, error=None, at=None):
    """Update the channel's status indicator from a real send, in the current transaction.

    The same outcome (and error) again within a second is not written again: a burst of
    sends would otherwise queue every dispatcher on this one row.
    """
    at = at or utcnow()
    outcome = "success" if success else "error"
    seen = (outcome, error)
    written = _status_writes()
    previous = written.get(channel)
    if previous and previous[0] == seen and time.monotonic() - previous[1] < STATUS_REFRESH_SECONDS:
        return
    written[channel] = (seen, time.monotonic())
    values = {"last_outcome": outcome, "last_attempt_at": at}
    if success:
        values["last_success_at"] = at
    else:
        values["last_error_at"] = at
        values["last_error"] = (error or "Unknown error")[:MAX_ERROR_LENGTH]
    result = db.session.execute(
        update(IntegrationStatus).where(IntegrationStatus.channel == channel).values(**values)
    )
    if result.rowcount == 0:
        row = _get_or_create(IntegrationStatus, channel, channel=channel)
        for name, value in values.items():
            setattr(row, name, value)


def reset_status(channel):
    """Back to "Not yet invoked": the configuration the old status described is gone."""
    _status_writes().pop(channel, None)
    db.session.execute(
        update(IntegrationStatus).where(IntegrationStatus.channel == channel).values(
            last_outcome=None, last_attempt_at=None, last_success_at=None,
            last_error_at=None, last_error=None,
        )
    )


class SettingsError(ValueError):
    """Settings cannot be saved as given; the message says why and what to do."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Setting:
    """One setting of an integration: a column of its row and a field of its form.

    A secret is stored encrypted in ``<name>_ciphertext``; left empty on save, it is kept.
    """

    name: str
    label: str
    # Raw form text to the stored value (None when left empty); ValueError says what is wrong.
    clean: Callable
    required: bool = True
    secret: bool = False
    # What the admin is asked to do when enabling without it: "enter the SMTP host".
    needed: str | None = None
    # How a stored value reads in the changes ("no encryption", not "none").
    words: dict | None = None
    # Whether a change makes the status indicator's last outcome describe another setup.
    resets_status: bool = True

    @property
    def column(self):
        return f"{self.name}_ciphertext" if self.secret else self.name

    def ask(self):
        return self.needed or f"enter the {self.label}"


@dataclass(frozen=True)
class Integration:
    channel: str
    # As the integration is named mid-sentence: "PagerDuty", "email".
    noun: str
    model: type
    # In the order the form shows them; exactly one is the secret.
    settings: tuple
    enable_hint: str = ""

    @property
    def label(self):
        return CHANNEL_LABELS[self.channel]

    @property
    def secret(self):
        return next(s for s in self.settings if s.secret)


def _choice(options, message):
    def clean(raw):
        if raw not in options:
            raise ValueError(message)
        return raw
    return clean


INTEGRATIONS = {
    "pagerduty": Integration(
        channel="pagerduty", noun="PagerDuty", model=PagerDutySettings,
        settings=(
            Setting("integration_key", "integration key", pagerduty.clean_integration_key,
                    secret=True, needed="paste an integration key"),
            Setting("severity", "severity", resets_status=False,
                    clean=_choice(SEVERITIES, f"Choose a severity: {', '.join(SEVERITIES)}.")),
        ),
        enable_hint=": find it in PagerDuty under Service → Integrations → Events API V2",
    ),
    "email": Integration(
        channel="email", noun="email", model=EmailSettings,
        settings=(
            Setting("host", "SMTP host", smtp.clean_host),
            Setting("port", "port", smtp.clean_port),
            Setting("tls_mode", "TLS mode", smtp.clean_tls_mode, words=smtp.TLS_MODE_WORDS),
            Setting("username", "username", smtp.clean_username, required=False),
            Setting("password", "password", smtp.clean_password, required=False, secret=True),
            Setting("from_address", "from address", smtp.clean_from_address),
        ),
    ),
    "sms": Integration(
        channel="sms", noun="SMS", model=SmsSettings,
        settings=(
            Setting("account_sid", "Account SID", twilio.clean_account_sid),
            Setting("auth_token", "auth token", twilio.clean_auth_token, secret=True,
                    needed="paste the auth token"),
            Setting("sender", "sender number", twilio.clean_sender),
        ),
        enable_hint=": the Twilio Console shows them under Account Info and Phone Numbers",
    ),
    "slack": Integration(
        channel="slack", noun="Slack", model=SlackSettings,
        settings=(
            Setting("bot_token", "bot token", slack.clean_bot_token, secret=True,
                    needed="paste the bot token"),
        ),
        enable_hint=": find it in your Slack app's settings under OAuth & Permissions",
    ),
}


def settings_row(channel):
    """The integration's settings, for reading: its defaults when nobody has saved any."""
    model = INTEGRATIONS[channel].model
    return db.session.get(model, 1) or _default_row(model, id=1)


def _settings_row_to_change(channel):
    return _get_or_create(INTEGRATIONS[channel].model, 1, id=1)


def pagerduty_settings():
    return settings_row("pagerduty")


def missing_settings(channel):
    """The required settings not saved yet, in the order the form shows them."""
    settings = settings_row(channel)
    return [s for s in INTEGRATIONS[channel].settings
            if s.required and getattr(settings, s.column) is None]


def save_first(channel):
    """"Save the SMTP host and the from address first", or None when nothing is missing."""
    missing = missing_settings(channel)
    return f"Save {join_words([f'the {s.label}' for s in missing])} first" if missing else None


def problem(channel):
    """Why the organisation cannot send through the integration now, or None."""
    integration = INTEGRATIONS[channel]
    missing = missing_settings(channel)
    if missing:
        return f"the {integration.noun} integration has no " + join_words(
            [s.label for s in missing], "or")
    if not settings_row(channel).enabled:
        return f"the {integration.noun} integration is disabled"
    return None


def _clean(setting, raw):
    if setting.secret and not (raw or "").strip():
        return None
    try:
        return setting.clean(raw)
    except ValueError as exc:
        raise SettingsError(str(exc), setting.name) from None


def _describe(setting, old, new):
    if setting.words:
        old, new = (setting.words.get(v, v) if v is not None else None for v in (old, new))
    if setting.secret:
        return f"{setting.label} {'replaced' if old is not None else 'added'}"
    if old is None:
        return f"{setting.label} set to {new}"
    if new is None:
        return f"{setting.label} cleared"
    return f"{setting.label} {old} → {new}"


def update_settings(channel, *, enabled, values, actor, now=None):
    """Apply the admin's changes; returns what changed, in words (never a secret itself).

    ``values`` maps each setting's name to the raw form text. The secret left empty (or
    None) keeps the stored one. The audit event and the change are written in the current
    database transaction; nothing is changed when a value is refused.
    """
    integration = INTEGRATIONS[channel]
    settings = _settings_row_to_change(channel)
    cleaned = {s.name: _clean(s, values.get(s.name)) for s in integration.settings}
    if enabled:
        # A secret left empty keeps the stored one; any other setting left empty is cleared.
        missing = [s for s in integration.settings if s.required and cleaned[s.name] is None
                   and not (s.secret and getattr(settings, s.column) is not None)]
        if missing:
            raise _incomplete(integration, missing)

    changes, reset = [], False
    for setting in integration.settings:
        old, new = getattr(settings, setting.column), cleaned[setting.name]
        if setting.secret:
            if new is None:
                continue
            new_value = encrypt(new)
        elif new == old:
            continue
        else:
            new_value = new
        changes.append(_describe(setting, old, new))
        setattr(settings, setting.column, new_value)
        reset = reset or setting.resets_status
    if enabled != settings.enabled:
        changes.append("integration enabled" if enabled else "integration disabled")
        settings.enabled = enabled
    if reset:
        reset_status(channel)
    if changes:
        _touch(channel, settings, actor, now, changes)
    return changes


def join_words(words, conjunction="and"):
    """``a``, ``a and b``, ``a, b and c``."""
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}" if len(words) > 1 else words[0]


def _incomplete(integration, missing):
    asks = join_words([s.ask() for s in missing])
    return SettingsError(f"{asks[0].upper()}{asks[1:]} before enabling {integration.noun}"
                         f"{integration.enable_hint}.", missing[0].name)


def update_pagerduty(*, enabled, new_key, severity, actor, now=None):
    return update_settings("pagerduty", enabled=enabled, actor=actor, now=now,
                           values={"integration_key": new_key, "severity": severity})


def remove_secret(channel, *, actor, now=None):
    """Forget the stored secret; an integration that cannot work without it is disabled."""
    secret = INTEGRATIONS[channel].secret
    settings = settings_row(channel)
    if getattr(settings, secret.column) is None:
        return []
    settings = _settings_row_to_change(channel)
    changes = [f"{secret.label} removed"]
    if settings.enabled and secret.required:
        changes.append("integration disabled")
        settings.enabled = False
    setattr(settings, secret.column, None)
    reset_status(channel)
    _touch(channel, settings, actor, now, changes)
    return changes


def _touch(channel, settings, actor, now, changes):
    settings.updated_at = now or utcnow()
    settings.updated_by_id = actor.id if actor is not None else None
    events.record(f"settings.{channel}_changed", actor=actor, data={"changes": changes})


def secret_mask(channel):
    """The stored secret as a mask, None when there is none, or a note when it cannot be read."""
    try:
        secret = stored_secret(channel)
    except SecretUnreadable as exc:
        return str(exc)
    return None if secret is None else mask(secret)


def stored_secret(channel):
    """The decrypted secret, or None; SecretUnreadable when the keys changed since it was saved."""
    ciphertext = getattr(settings_row(channel), INTEGRATIONS[channel].secret.column)
    return None if ciphertext is None else decrypt(ciphertext)
