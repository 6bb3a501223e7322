"""Saying "yes, this is me": the call-binding code, then a passkey (or, where the organisation
allows it and the user has none, their password again).

Signed out, the passkey is the whole proof: ``answer_with_passkey`` takes one assertion by one
of the user's own passkeys, for a challenge bound to this request, and answers with it; no
session is left behind.

The code is typed, not picked: the requestor reads it to the user, who types its digits. One
wrong code denies the request: someone who only overheard part of it, or guesses, gets one try
in a thousand. Everything here writes only what must last whatever the outcome (a used-up
challenge, a refusal's event): the caller commits after a VerificationError too.
"""
import secrets

from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...models import utcnow
from ..people import accounts, passkeys, proofs
from . import risks, transactions


class VerificationError(ServiceError):
    """The user did not prove it is them; the message says what to do. ``field`` is the form
    field it is about."""


def verify(transaction, *, user, code, credential=None, password=None, now=None):
    """Check the code and the proof, then verify. Returns transactions.Outcome (denied after a
    wrong code); raises VerificationError (the transaction still pending) when the user must
    try again."""
    now = now or utcnow()
    if transaction.user_id != user.id:
        raise PermissionError("only the transaction's user may answer it")
    if transaction.binding_code is not None and not _code_matches(transaction, code):
        risks.note(transaction, user, now, "wrong_code")
        return transactions.answer(transaction, "deny", user=user, now=now,
                                   data={"reason": "wrong_code", "risks": transaction.risks})
    proof = proofs.needed(user, answering=True)
    prove(transaction, user, proof, credential=credential, password=password, now=now)
    risks.note(transaction, user, now, *(["password"] if proof == "password" else []))
    return transactions.answer(transaction, "verify", user=user, now=now,
                               data={"proof": proof, "risks": transaction.risks})


def prove(transaction, user, proof, *, credential=None, password=None, now=None,
          to="verify"):
    """Check that ``user`` answering ``transaction`` is them, by ``proof`` (proofs.needed's
    "passkey", "password" or "register": they have none and must get one ``to`` answer). A
    failure is a refusal's event and VerificationError, naming the field to fix."""
    if proof == "register":
        raise VerificationError(
            f"You have no passkey, and your organisation requires one to {to}. Ask an admin "
            "for an enrolment link to register one, then come back to this page.", "credential")
    try:
        if proof == "passkey":
            passkeys.check_assertion(transaction, user, credential, now=now)
        else:
            check_password(user, password)
    except (passkeys.PasskeyError, VerificationError) as exc:
        event_log.record(kinds.VERIFICATION_REFUSED, transaction=transaction, actor=user,
                         data={"status": "pending", "proof": proof, "reason": str(exc)})
        raise VerificationError(str(exc), "credential" if proof == "passkey" else "password") \
            from None


def answer_with_passkey(transaction, decision, *, code, credential, now=None):
    """Verify or deny ``transaction`` for someone not signed in: one assertion by one of its
    user's passkeys proves it is them. For ``verify`` the code's form is checked first
    (nothing counted for a slip), then the assertion, then the code: a wrong one denies.
    Raises VerificationError (still pending, the challenge used up) when the proof fails."""
    now = now or utcnow()
    user = transaction.user
    code_right = (decision != "verify" or transaction.binding_code is None
                  or _code_matches(transaction, code))
    try:
        passkeys.check_assertion(transaction, user, credential, now=now)
    except passkeys.PasskeyError as exc:
        event_log.record(kinds.VERIFICATION_REFUSED, transaction=transaction, actor=user,
                         data={"status": "pending", "proof": "passkey", "reason": str(exc),
                               "signed_in": False})
        raise VerificationError(str(exc), "credential") from None
    if decision == "deny" or not code_right:
        extra = [] if code_right else ["wrong_code"]
        risks.note(transaction, user, now, *extra)
        return transactions.answer(transaction, "deny", user=user, now=now, data={
            "proof": "passkey", "signed_in": False, "risks": transaction.risks,
            **({} if code_right else {"reason": "wrong_code"})})
    risks.note(transaction, user, now)
    return transactions.answer(transaction, "verify", user=user, now=now,
                               data={"proof": "passkey", "signed_in": False,
                                     "risks": transaction.risks})


def _code_matches(transaction, code):
    """True for the right code; VerificationError (nothing counted) when what was typed is not
    a code at all, so a slip of the finger is not a wrong code."""
    typed = "".join((code or "").split())
    expected = transaction.binding_code
    if not (typed.isascii() and typed.isdigit() and len(typed) == len(expected)):
        raise VerificationError(
            f"Type the {len(expected)}-digit code {transaction.requestor.name} reads to you, "
            "digits only.", "code")
    return secrets.compare_digest(typed, expected)


def check_password(user, password):
    password = password or ""
    if not password:
        raise VerificationError("Enter your password to verify.", "password")
    if not accounts.password_proves(user, password):
        raise VerificationError("That is not your password. Enter the password you sign in "
                                "with.", "password")
