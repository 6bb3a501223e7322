"""Integration settings rows and each integration's status indicator."""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import SEVERITIES, IntegrationStatus, PagerDutySettings, utcnow
from . import events
from .secrets import SecretUnreadable, decrypt, encrypt, mask

MAX_ERROR_LENGTH = 2000


def _get_or_create(model, key, **defaults):
    """The row with primary key ``key``, created if missing (safe when two processes race)."""
    row = db.session.get(model, key)
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            row = model(**defaults)
            db.session.add(row)
    except IntegrityError:
        row = db.session.get(model, key, populate_existing=True)
    return row


def pagerduty_settings():
    return _get_or_create(PagerDutySettings, 1, id=1)


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


def record_outcome(channel, *, success, error=None, at=None):
    """Update the channel's status indicator from a real send, in the current transaction."""
    at = at or utcnow()
    values = {"last_outcome": "success" if success else "error", "last_attempt_at": at}
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


def update_pagerduty(*, enabled, new_key, severity, actor, now=None):
    """Apply the admin's changes; returns what changed, in words (never the key itself).

    ``new_key`` is a cleaned key or None to keep the stored one. The audit event and the
    change are written in the current database transaction.
    """
    if severity not in SEVERITIES:
        raise SettingsError(f"Choose a severity: {', '.join(SEVERITIES)}.", "severity")
    settings = pagerduty_settings()
    had_key = settings.integration_key_ciphertext is not None
    if enabled and not (new_key or had_key):
        raise SettingsError(
            "Paste an integration key before enabling PagerDuty: find it in PagerDuty under "
            "Service → Integrations → Events API V2.", "integration_key")
    changes = []
    if new_key:
        settings.integration_key_ciphertext = encrypt(new_key)
        changes.append("integration key replaced" if had_key else "integration key added")
        reset_status("pagerduty")
    if severity != settings.severity:
        changes.append(f"severity {settings.severity} → {severity}")
        settings.severity = severity
    if enabled != settings.enabled:
        changes.append("integration enabled" if enabled else "integration disabled")
        settings.enabled = enabled
    if changes:
        _touch(settings, actor, now, changes)
    return changes


def remove_pagerduty_key(*, actor, now=None):
    settings = pagerduty_settings()
    if settings.integration_key_ciphertext is None:
        return []
    changes = ["integration key removed"]
    if settings.enabled:
        changes.append("integration disabled")
    settings.integration_key_ciphertext = None
    settings.enabled = False
    reset_status("pagerduty")
    _touch(settings, actor, now, changes)
    return changes


def _touch(settings, actor, now, changes):
    settings.updated_at = now or utcnow()
    settings.updated_by_id = actor.id if actor is not None else None
    events.record("settings.pagerduty_changed", actor=actor, data={"changes": changes})


def pagerduty_key_mask():
    """The stored key as a mask, None when there is none, or a note when it cannot be read."""
    ciphertext = pagerduty_settings().integration_key_ciphertext
    if ciphertext is None:
        return None
    try:
        return mask(decrypt(ciphertext))
    except SecretUnreadable as exc:
        return str(exc)
