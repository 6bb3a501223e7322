"""What weakens the proof that it is the user answering, told to the requestor in words.

Anyone who knows a user's password may try to pass for them. These signals say when the
proof behind "verified" is weaker than usual, for the help-desk agent to ask the caller about:
a passkey registered lately, an admin's passkey reset lately, a change to how the user is
reached or of their password lately, a password used instead of a passkey, a wrong
call-binding code.
"""
from datetime import timedelta

from sqlalchemy import func, select

from ...extensions import db
from ...models import Passkey

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


def of_user(user, now):
    """The signals that hold for ``user`` at ``now`` whatever the request."""
    found = []
    if user.passkeys_reset_at is not None and now - user.passkeys_reset_at < WINDOW:
        found.append("passkey_reset")
    newest = db.session.scalar(select(func.max(Passkey.created_at))
                               .where(Passkey.user_id == user.id))
    if newest is not None and now - newest < WINDOW:
        found.append("new_passkey")
    if user.contacts_changed_at is not None and now - user.contacts_changed_at < WINDOW:
        found.append("contacts_changed")
    if user.password_changed_at is not None and now - user.password_changed_at < WINDOW:
        found.append("password_changed")
    return found


def merged(*groups):
    """The signals of every group, once each, in the order they are shown."""
    present = {code for group in groups for code in (group or ())}
    return [code for code in SIGNALS if code in present]


def note(transaction, user, now, *extra):
    """Add what holds now (and ``extra``) to the transaction's signals; returns them."""
    transaction.risks = merged(transaction.risks, of_user(user, now), extra)
    return transaction.risks


def words(codes, name):
    """Each signal as a sentence about the user called ``name``."""
    return [WORDS[code].format(name=name) for code in SIGNALS if code in (codes or ())]
