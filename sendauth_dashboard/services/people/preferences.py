"""Messaging preferences: the channels a user wants requests through, and how to reach them there.

The rules: a channel that needs a contact detail (a phone number for SMS, a member id for
Slack) cannot be on without it, and at least one channel stays on. Whether the
organisation has set a channel up is not the user's rule: routing decides that per request.
"""
from ... import channels
from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...models import utcnow
from . import notices, proofs


def contact_details():
    """{User attribute: Contact} for every contact detail a channel needs typed in."""
    return {cls.contact.attribute: cls.contact for cls in channels.REGISTRY.values()
            if cls.contact}


class PreferencesError(ServiceError):
    """The preferences cannot be saved as given; ``problems`` maps a field (or None) to why."""

    def __init__(self, problems):
        super().__init__(" ".join(problems.values()))
        self.problems = problems


def current(user):
    """The user's preferences as the form shows them."""
    values = {name: user.wants(name) for name in channels.names()}
    values.update({name: getattr(user, name) for name in contact_details()})
    return values


def offered(user):
    """The channels a person's messaging preferences offer them: those the organisation has
    set up and enabled; every channel to an admin, who can set one up (the page says why one
    is unavailable, and where)."""
    if user.has_role("admin"):
        return list(channels.names())
    return [name for name in channels.names() if channels.problem(name) is None]


def as_chosen(user, offered_names, *, wants, contact):
    """The choices to save: the form's (``wants``, ``contact``) for the channels offered; the
    others, and their contact details, stay as they are (the person was not shown them)."""
    kept = current(user)
    wants = {name: wants[name] if name in offered_names else kept[name]
             for name in channels.names()}
    contact = {cls.contact.attribute: contact[cls.contact.attribute]
               if cls.name in offered_names else kept[cls.contact.attribute]
               for cls in channels.REGISTRY.values() if cls.contact}
    return wants, contact


def update_messaging(user, *, wants, contact, credential=None, password=None, now=None):
    """Apply a user's choices; returns what changed, in words. Nothing changes when refused.

    ``wants`` maps each channel to on or off; ``contact`` maps each contact detail to what
    was typed (empty removes it). A change needs proof that it is the user: a fresh passkey
    ``credential`` when they have a passkey, their ``password`` otherwise (proofs.ProofError
    when missing or wrong). It is announced through the channels that reached the user before
    it (services.people.notices) and is an event, all in the current database transaction.
    """
    now = now or utcnow()
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

    updates, changes = {}, []
    for channel in channels.names():
        if wants[channel] != user.wants(channel):
            updates[f"notify_{channel}"] = wants[channel]
            changes.append(f"{channels.label(channel)} {'on' if wants[channel] else 'off'}")
    for name, value in cleaned.items():
        old = getattr(user, name)
        if value != old:
            updates[name] = value
            verb = "removed" if value is None else "changed" if old else "added"
            changes.append(f"{details[name].label} {verb}")
    if not changes:
        return changes
    proof = proofs.check(user, credential=credential, password=password, now=now)
    announced = notices.announce(user, notices.contact_change(user, changes, now))
    for name, value in updates.items():
        setattr(user, name, value)
    user.contacts_changed_at = now
    event_log.record(kinds.PROFILE_MESSAGING_CHANGED, actor=user,
                     data={"changes": changes, "proof": proof, "announced_through": announced})
    return changes
