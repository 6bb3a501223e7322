"""Messaging preferences: the channels a user wants requests through, and how to reach them there.

The rules: a channel that needs a contact detail (a phone number for SMS, a member id for
Slack) cannot be on without it, and at least one channel stays on. Whether the
organisation has set a channel up is not the user's rule: routing decides that per request.
"""
from .. import channels
from .live import event_log


def contact_details():
    """{User attribute: Contact} for every contact detail a channel needs typed in."""
    return {cls.contact.attribute: cls.contact for cls in channels.REGISTRY.values()
            if cls.contact}


class PreferencesError(ValueError):
    """The preferences cannot be saved as given; ``problems`` maps a field (or None) to why."""

    def __init__(self, problems):
        super().__init__(" ".join(problems.values()))
        self.problems = problems


def current(user):
    """The user's preferences as the form shows them."""
    values = {name: user.wants(name) for name in channels.names()}
    values.update({name: getattr(user, name) for name in contact_details()})
    return values


def update_messaging(user, *, wants, contact):
    """Apply a user's choices; returns what changed, in words. Nothing changes when refused.

    ``wants`` maps each channel to on or off; ``contact`` maps each contact detail to what
    was typed (empty removes it). The event is added to the current database transaction.
    """
    problems, cleaned = {}, {}
    details = contact_details()
    for name, detail in details.items():
        try:
            cleaned[name] = detail.clean(contact.get(name))
        except ValueError as exc:
            problems[name] = str(exc)
    for cls in channels.REGISTRY.values():
        needs = cls.contact.attribute if cls.contact else None
        if wants[cls.name] and needs in cleaned and cleaned[needs] is None:
            problems[needs] = (f"Enter your {cls.contact.label} to get requests through "
                               f"{cls.label}, or turn {cls.label} off.")
    if not any(wants.values()):
        problems[None] = ("Keep at least one channel on: with none, nobody can send you an "
                          "authentication request.")
    if problems:
        raise PreferencesError(problems)

    changes = []
    for channel in channels.names():
        if wants[channel] != user.wants(channel):
            setattr(user, f"notify_{channel}", wants[channel])
            changes.append(f"{channels.label(channel)} {'on' if wants[channel] else 'off'}")
    for name, value in cleaned.items():
        old = getattr(user, name)
        if value != old:
            setattr(user, name, value)
            verb = "removed" if value is None else "changed" if old else "added"
            changes.append(f"{details[name].label} {verb}")
    if changes:
        event_log.record("profile.messaging_changed", actor=user, data={"changes": changes})
    return changes
