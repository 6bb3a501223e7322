"""The organisation's own rules (admins): whether verifying a request needs a passkey, and
whether a request's PagerDuty incident is resolved when the request becomes final."""
from ...core import event_log
from ...core.rows import default_row, get_or_create
from ...extensions import db
from ...models import OrganisationSettings, utcnow


def settings():
    """For reading: the saved row, or the defaults when nobody has saved any."""
    return db.session.get(OrganisationSettings, 1) or default_row(OrganisationSettings, id=1)


def requires_passkey():
    return settings().require_passkey


# Each rule: its words when turned on, and when turned off.
RULE_WORDS = {
    "require_passkey": ("a passkey is required to verify",
                        "users without a passkey verify with their password"),
    "resolve_pagerduty_incidents": ("PagerDuty incidents are resolved when the request is final",
                                    "PagerDuty incidents are left for a person to resolve"),
}


def update(*, actor, now=None, **rules):
    """Save the rules given (``require_passkey=True``, ...), uncommitted; returns what changed,
    in words, or [] for nothing."""
    current = settings()
    changed = {name: bool(value) for name, value in rules.items()
               if getattr(current, name) != bool(value)}
    if not changed:
        return []
    row = get_or_create(OrganisationSettings, 1, id=1)
    changes = []
    for name, value in changed.items():
        setattr(row, name, value)
        changes.append(RULE_WORDS[name][0 if value else 1])
    row.updated_at = now or utcnow()
    row.updated_by_id = actor.id if actor else None
    event_log.record("settings.organisation_changed", actor=actor, data={"changes": changes})
    return changes
