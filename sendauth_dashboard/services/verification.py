"""Saying "yes, this is me": the call-binding code, then a passkey (or, where the organisation
allows it and the user has none, their password again).

Everything here writes only what must last whatever the outcome (a wrong pick, a used-up
challenge, a refusal's event): the caller commits after a VerificationError too.
"""
from sqlalchemy import select, update
from werkzeug.security import check_password_hash

from ..extensions import db
from ..models import Transaction, utcnow
from . import organisation, passkeys, transactions
from .live import event_log

MAX_WRONG_PICKS = 3
PASSWORD_MAX_CHARS = 1024


class VerificationError(ValueError):
    """The user did not prove it is them; the message says what to do. ``field`` is the form
    field it is about."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def binding_choices(transaction):
    return (transaction.binding_choices or "").split()


def proof_needed(user):
    """How ``user`` proves it is them: ``passkey``, ``password``, or ``register`` (they cannot
    until they register a passkey)."""
    if passkeys.has_passkey(user):
        return "passkey"
    return "register" if organisation.requires_passkey() else "password"


def verify(transaction, *, user, picked_code, credential=None, password=None, now=None):
    """Check the code and the proof, then verify. Returns transactions.Outcome; raises
    VerificationError (the transaction still pending) when the user must try again."""
    now = now or utcnow()
    if transaction.user_id != user.id:
        raise PermissionError("only the transaction's user may answer it")
    if transaction.binding_code is not None:
        outcome = _check_pick(transaction, picked_code, user=user, now=now)
        if outcome is not None:
            return outcome
    proof = proof_needed(user)
    if proof == "register":
        raise VerificationError(
            "You have no passkey, and your organisation requires one to verify. Register one "
            "under Passkeys in your profile, then come back to this page.", "credential")
    try:
        if proof == "passkey":
            passkeys.check_assertion(transaction, user, credential, now=now)
        else:
            _check_password(user, password)
    except (passkeys.PasskeyError, VerificationError) as exc:
        event_log.record("verification.refused", transaction=transaction, actor=user,
                      data={"status": "pending", "proof": proof, "reason": str(exc)})
        raise VerificationError(str(exc), "credential" if proof == "passkey" else "password") \
            from None
    return transactions.answer(transaction, "verify", user=user, now=now, data={"proof": proof})


def _check_pick(transaction, picked_code, *, user, now):
    """None when the right code was picked. A wrong pick is recorded; the last one denies."""
    choices = binding_choices(transaction)
    if picked_code not in choices:
        raise VerificationError("Pick the code the person who sent this request reads to you.",
                                "code")
    if picked_code == transaction.binding_code:
        return None
    counted = db.session.execute(
        update(Transaction)
        .where(Transaction.id == transaction.id, Transaction.status == "pending",
               Transaction.expires_at > now)
        .values(wrong_picks=Transaction.wrong_picks + 1)
        .execution_options(synchronize_session=False))
    if counted.rowcount != 1:
        # No longer pending: answering changes nothing and says what it became.
        return transactions.answer(transaction, "verify", user=user, now=now)
    picks = db.session.scalar(select(Transaction.wrong_picks)
                              .where(Transaction.id == transaction.id))
    event_log.record("binding.wrong_pick", transaction=transaction, actor=user,
                  data={"status": "pending", "picked": picked_code, "picks": picks,
                        "limit": MAX_WRONG_PICKS})
    if picks >= MAX_WRONG_PICKS:
        return transactions.answer(transaction, "deny", user=user, now=now,
                                   data={"reason": "wrong_code"})
    left = MAX_WRONG_PICKS - picks
    raise VerificationError(
        f"{picked_code} is not the code for this request. Ask the person who sent it to read "
        f"you the code again. After {left} more wrong {'pick' if left == 1 else 'picks'} the "
        "request is denied.", "code")


def _check_password(user, password):
    password = password or ""
    if not password:
        raise VerificationError("Enter your password to verify.", "password")
    if len(password) > PASSWORD_MAX_CHARS or not check_password_hash(user.password_hash, password):
        raise VerificationError("That is not your password. Enter the password you sign in "
                                "with.", "password")
