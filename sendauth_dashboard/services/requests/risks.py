"""What weakens the proof that it is the user answering, told to the requestor in words.

Anyone who knows a user's password may try to pass for them. These signals say when the
proof behind "verified" is weaker than usual, for the help-desk agent to ask the caller about:
a passkey registered lately, an admin's passkey reset lately, a change to how the user is
reached or of their password lately, a password used instead of a passkey, a wrong
call-binding code.

Graded, not always on: what every new user does on their first day (registering a first
passkey through their invitation or enrolment link, setting how they get requests on the day
their account was made) is a quiet note, not a warning. A warning that is always there is read
as noise, and then the real one is missed.
"""
from datetime import timedelta

from sqlalchemy import func, select

from ...core import event_kinds as kinds
from ...extensions import db
from ...models import Event, Passkey

# A change younger than this is called recent.
WINDOW = timedelta(hours=24)

# In the order they are shown.
SIGNALS = ("wrong_code", "passkey_reset", "new_passkey", "contacts_changed", "password_changed",
           "password")

WORDS = {
    "wrong_code": "a wrong code was entered for this request",
    "passkey_reset": "an admin reset {name}'s passkeys less than 24 hours ago",
    "new_passkey": "{name} registered a passkey less than 24 hours ago",
    "contacts_changed": "{name} changed how they get requests (messaging preferences) less "
                        "than 24 hours ago",
    "password_changed": "{name} changed their password less than 24 hours ago",
    "password": "{name} verified with their password, not a passkey",
}

# Quiet notes: shown, never as a warning.
NOTES = {
    "first_passkey": "{name} registered their first passkey less than 24 hours ago, through "
                     "their enrolment link",
    "first_contacts": "{name} set how they get requests on their first day",
}


def of_user(user, now):
    """The signals that hold for ``user`` at ``now`` whatever the request."""
    found = []
    if user.passkeys_reset_at is not None and now - user.passkeys_reset_at < WINDOW:
        found.append("passkey_reset")
    newest = db.session.scalar(select(func.max(Passkey.created_at))
                               .where(Passkey.user_id == user.id))
    if newest is not None and now - newest < WINDOW:
        found.append("first_passkey" if _only_passkey_ever(user) else "new_passkey")
    if user.contacts_changed_at is not None and now - user.contacts_changed_at < WINDOW:
        first_day = user.created_at is not None and now - user.created_at < WINDOW
        found.append("first_contacts" if first_day else "contacts_changed")
    if user.password_changed_at is not None and now - user.password_changed_at < WINDOW:
        found.append("password_changed")
    return found


def _only_passkey_ever(user):
    """True when the user's one passkey is the only one they ever registered, and no admin
    has reset their passkeys: their first enrolment."""
    if user.passkeys_reset_at is not None:
        return False
    registered = db.session.scalar(select(func.count(Event.id)).where(
        Event.kind == kinds.PASSKEY_REGISTERED, Event.actor_id == user.id))
    return registered <= 1


def merged(*groups):
    """The signals of every group, once each, in the order they are shown."""
    present = {code for group in groups for code in (group or ())}
    return [code for code in (*SIGNALS, *NOTES) if code in present]


def note(transaction, user, now, *extra):
    """Add what holds now (and ``extra``) to the transaction's signals; returns them."""
    transaction.risks = merged(transaction.risks, of_user(user, now), extra)
    return transaction.risks


def words(codes, name):
    """Each warning as a sentence about the user called ``name``."""
    return [WORDS[code].format(name=name) for code in SIGNALS if code in (codes or ())]


def notes(codes, name):
    """Each quiet note as a sentence about the user called ``name``."""
    return [NOTES[code].format(name=name) for code in NOTES if code in (codes or ())]
