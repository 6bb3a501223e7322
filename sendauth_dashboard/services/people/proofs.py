"""Proving it is the user before a change to how they prove it or how they are reached: a
fresh assertion with one of their passkeys when they have one, their password otherwise.
A password alone never silently changes where requests go (DESIGN.md, "Trust")."""
from ...core.errors import ServiceError
from ..reports import organisation
from . import accounts, passkeys


class ProofError(ServiceError):
    """The user did not prove it is them; ``field`` is the form field it is about."""


def needed(user, *, answering=False):
    """How ``user`` proves it is them: ``passkey`` when they have one, else ``password``;
    but answering a request where the organisation requires a passkey, ``register`` (they
    cannot until they register one)."""
    if passkeys.has_passkey(user):
        return "passkey"
    return "register" if answering and organisation.requires_passkey() else "password"


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
    if not accounts.password_proves(user, password):
        raise ProofError("That is not your current password. Enter the password you sign in "
                         "with.", field)
