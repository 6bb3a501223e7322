"""The organisation's own rules (admins): whether verifying a request needs a passkey."""
from ..extensions import db
from ..models import OrganisationSettings, utcnow
from .live import event_log
from .rows import default_row, get_or_create


def settings():
    """For reading: the saved row, or the defaults when nobody has saved any."""
    return db.session.get(OrganisationSettings, 1) or default_row(OrganisationSettings, id=1)


def requires_passkey():
    return settings().require_passkey


def update(*, require_passkey, actor, now=None):
    """Save the settings (uncommitted); returns what changed, in words, or [] for nothing."""
    if settings().require_passkey == bool(require_passkey):
        return []
    row = get_or_create(OrganisationSettings, 1, id=1)
    row.require_passkey = bool(require_passkey)
    row.updated_at = now or utcnow()
    row.updated_by_id = actor.id if actor else None
    change = ("a passkey is required to verify" if row.require_passkey
              else "users without a passkey verify with their password")
    event_log.record("settings.organisation_changed", actor=actor, data={"changes": [change]})
    return [change]
