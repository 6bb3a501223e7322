"""Proving it is the user before a change to how they prove it or how they are reached: a
fresh assertion with one of their passkeys when they have one, their password otherwise.
A password alone never silently changes where requests go (DESIGN.md, "Trust")."""
from werkzeug.security import check_password_hash

from . import passkeys

PASSWORD_MAX_CHARS = 1024


class ProofError(ValueError):
    """The user did not prove it is them; ``field`` is the form field it is about."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def needed(user):
    """``passkey`` when the user has one, else ``password``."""
    return "passkey" if passkeys.has_passkey(user) else "password"


def check(user, *, credential=None, password=None, now=None):
    """The proof's kind, or ProofError. A passkey's challenge is used up either way."""
    if needed(user) == "passkey":
        try:
            passkeys.check_proof(user, credential, now=now)
        except passkeys.PasskeyError as exc:
            raise ProofError(str(exc), "proof") from None
        return "passkey"
    check_password(user, password, "current_password")
    return "password"


def check_password(user, password, field):
    password = password or ""
    if not password:
        raise ProofError("Enter your current password to save this change.", field)
    if len(password) > PASSWORD_MAX_CHARS or not check_password_hash(user.password_hash, password):
        raise ProofError("That is not your current password. Enter the password you sign in "
                         "with.", field)
