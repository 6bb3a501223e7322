"""Messaging preferences: the channels a user wants requests through, and how to reach them there.

The rules: a channel that needs a contact detail (a phone number for SMS, a member id for
Slack) cannot be on without it, and at least one channel stays on. Whether the
organisation has set a channel up is not the user's rule: routing decides that per request.
"""
from ..models import CHANNEL_LABELS, CHANNELS
from . import events
from .channels import CHANNEL_CLASSES
from .phone_numbers import clean_phone_number
from .slack import clean_member_id

# The contact details a user types in, each with its check.
CONTACT_DETAILS = {"phone": clean_phone_number, "slack_member_id": clean_member_id}
CONTACT_LABELS = {cls.contact: cls.contact_label for cls in CHANNEL_CLASSES.values()
                  if cls.contact}


class PreferencesError(ValueError):
    """The preferences cannot be saved as given; ``problems`` maps a field (or None) to why."""

    def __init__(self, problems):
        super().__init__(" ".join(problems.values()))
        self.problems = problems


def current(user):
    """The user's preferences as the form shows them."""
    values = {name: user.wants(name) for name in CHANNELS}
    values.update({name: getattr(user, name) for name in CONTACT_DETAILS})
    return values


def update_messaging(user, *, wants, contact):
    """Apply a user's choices; returns what changed, in words. Nothing changes when refused.

    ``wants`` maps each channel to on or off; ``contact`` maps each contact detail to what
    was typed (empty removes it). The event is added to the current database transaction.
    """
    problems, cleaned = {}, {}
    for name, clean in CONTACT_DETAILS.items():
        try:
            cleaned[name] = clean(contact.get(name))
        except ValueError as exc:
            problems[name] = str(exc)
    for channel in CHANNELS:
        needs, label = CHANNEL_CLASSES[channel].contact, CHANNEL_LABELS[channel]
        if wants[channel] and needs in cleaned and cleaned[needs] is None:
            problems[needs] = (f"Enter your {CONTACT_LABELS[needs]} to get requests through "
                               f"{label}, or turn {label} off.")
    if not any(wants.values()):
        problems[None] = ("Keep at least one channel on: with none, nobody can send you an "
                          "authentication request.")
    if problems:
        raise PreferencesError(problems)

    changes = []
    for channel in CHANNELS:
        if wants[channel] != user.wants(channel):
            setattr(user, f"notify_{channel}", wants[channel])
            changes.append(f"{CHANNEL_LABELS[channel]} {'on' if wants[channel] else 'off'}")
    for name, value in cleaned.items():
        old = getattr(user, name)
        if value != old:
            setattr(user, name, value)
            verb = "removed" if value is None else "changed" if old else "added"
            changes.append(f"{CONTACT_LABELS[name]} {verb}")
    if changes:
        events.record("profile.messaging_changed", actor=user, data={"changes": changes})
    return changes
