"""Passkeys (WebAuthn): registering them, removing them, and checking one proves it is the user.

The relying party is the dashboard at ``BASE_URL``: its host is the RP id, its scheme, host and
port the only origin accepted. User verification (a PIN or a fingerprint on the authenticator)
is required both when registering and when verifying a request.
"""
import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import webauthn
from flask import current_app
from sqlalchemy import delete, func, select
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ...core import event_kinds as kinds
from ...core import event_log, json_input
from ...core.errors import ServiceError
from ...core.rows import use_once
from ...extensions import db
from ...models import Passkey, PasskeyChallenge, utcnow
from . import attempts

RP_NAME = "SendAuth"
CHALLENGE_BYTES = 32
CHALLENGE_TTL_SECONDS = 300
CEREMONY_TIMEOUT_MS = 120_000
NAME_MAX_CHARS = 64
CREDENTIAL_MAX_CHARS = 16_384
KNOWN_TRANSPORTS = {t.value for t in AuthenticatorTransport}


class PasskeyError(ServiceError):
    """A passkey cannot be registered or used as sent; the message says why and what to do."""


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str


def relying_party():
    """The RP id and origin, both from BASE_URL."""
    parts = urlsplit(current_app.config["BASE_URL"])
    return RelyingParty(id=parts.hostname, origin=f"{parts.scheme}://{parts.netloc}")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def of_user(user):
    return db.session.scalars(
        select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.id)).all()


def has_passkey(user):
    return db.session.scalar(select(func.count(Passkey.id)).where(Passkey.user_id == user.id)) > 0


def _descriptors(passkeys):
    return [PublicKeyCredentialDescriptor(
        id=from_b64url(p.credential_id),
        transports=[AuthenticatorTransport(t) for t in p.transports if t in KNOWN_TRANSPORTS],
    ) for p in passkeys]


def _user_handle(user):
    """Stable and not personal: the authenticator stores it with the passkey."""
    return f"sendauth-user-{user.id}".encode()


def _new_challenge(user, purpose, now, transaction=None):
    """Random bytes for the authenticator to sign, kept on the server for ``user`` and
    ``purpose`` (and ``transaction``): single use, expiring. Uncommitted.

    Each one is counted per user (PASSKEY_OPTIONS_RATE_LIMIT: attempts.TooManyAttempts past
    it), and the user's expired ones go as it is made (the dispatcher prunes everyone's)."""
    attempts.take("PASSKEY_OPTIONS_RATE_LIMIT", {
        f"passkey-options:{user.id}": "Too many passkey requests for your account in a short "
                                      "time."})
    db.session.execute(delete(PasskeyChallenge).where(PasskeyChallenge.user_id == user.id,
                                                      PasskeyChallenge.expires_at < now))
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    expires_at = now + timedelta(seconds=CHALLENGE_TTL_SECONDS)
    if transaction is not None:
        expires_at = min(transaction.expires_at, expires_at)
    db.session.add(PasskeyChallenge(
        purpose=purpose, transaction_id=transaction.id if transaction is not None else None,
        user_id=user.id, challenge=b64url(challenge), created_at=now, expires_at=expires_at))
    return challenge


def prune_challenges(now):
    """Delete every challenge past its expiry, used or not (uncommitted); returns how many."""
    return db.session.execute(delete(PasskeyChallenge).where(
        PasskeyChallenge.expires_at < now)).rowcount


def registration_options(user, now=None):
    """Options as JSON for navigator.credentials.create; their challenge is kept on the
    server (uncommitted) until the browser answers, and works once."""
    rp = relying_party()
    options = webauthn.generate_registration_options(
        rp_id=rp.id, rp_name=RP_NAME, user_id=_user_handle(user), user_name=user.email,
        user_display_name=user.name,
        challenge=_new_challenge(user, "register", now or utcnow()),
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=_descriptors(of_user(user)),
    )
    return webauthn.options_to_json(options)


def parse_credential(text):
    """The browser's PublicKeyCredential as a dict, or PasskeyError."""
    if not text or len(text) > CREDENTIAL_MAX_CHARS:
        raise PasskeyError("No passkey answer arrived from your browser. Try again.")
    try:
        credential = json_input.parse(text, max_chars=CREDENTIAL_MAX_CHARS)
    except json_input.JsonError:
        credential = None
    if not isinstance(credential, dict) or not isinstance(credential.get("id"), str) \
            or not isinstance(credential.get("response"), dict):
        raise PasskeyError("Your browser's passkey answer was not readable. Try again.")
    return credential


def clean_name(name, user):
    name = " ".join((name or "").split())
    if len(name) > NAME_MAX_CHARS:
        raise PasskeyError(f"The name must be at most {NAME_MAX_CHARS} characters; "
                           f"yours has {len(name)}.")
    return name or f"Passkey {len(of_user(user)) + 1}"


def register(user, credential_text, name="", now=None):
    """Check the browser's answer to the registration options and keep the passkey
    (uncommitted). Who may register one is the caller's rule (``add`` on the profile, an
    enrolment link); the challenge is used up whatever the outcome."""
    now = now or utcnow()
    name = clean_name(name, user)
    credential = parse_credential(credential_text)
    challenge = _signed_challenge(credential)
    _consume_challenge(challenge, user=user, purpose="register", now=now)
    rp = relying_party()
    try:
        verified = webauthn.verify_registration_response(
            credential=credential, expected_challenge=from_b64url(challenge),
            expected_rp_id=rp.id, expected_origin=rp.origin, require_user_verification=True)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyError(f"The passkey could not be registered: {_reason(exc)}") from None
    credential_id = b64url(verified.credential_id)
    if db.session.scalar(select(Passkey.id).where(Passkey.credential_id == credential_id)):
        raise PasskeyError("This passkey is already registered.")
    passkey = Passkey(
        user_id=user.id, credential_id=credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, name=name, created_at=now,
        transports=_transports(credential["response"].get("transports")),
    )
    db.session.add(passkey)
    db.session.flush()
    event_log.record(kinds.PASSKEY_REGISTERED, actor=user,
                  data={"passkey_id": passkey.id, "name": passkey.name})
    return passkey


def add(user, credential_text, proof_text, name="", now=None):
    """A user adds a passkey on their profile: only with a fresh assertion from one they
    already have. Their first passkey comes through an enrolment link
    (services.people.enrolment)."""
    now = now or utcnow()
    if not has_passkey(user):
        raise PasskeyError("Your first passkey is registered through an enrolment link: ask an "
                           "admin for one (Settings → Users).")
    check_proof(user, proof_text, now=now)
    return register(user, credential_text, name=name, now=now)


def _transports(reported):
    """How the browser says it reaches the authenticator, kept for the hints it gives later."""
    if not isinstance(reported, list):
        return []
    return [t for t in reported if isinstance(t, str) and t in KNOWN_TRANSPORTS]


def remove(user, passkey_id, proof_text, now=None):
    """Remove one of the user's passkeys (uncommitted) after a fresh proof with one of their
    passkeys (the one removed included): with the password alone, someone could remove them
    all and verify with the password where the organisation allows it. False if they have no
    such passkey."""
    passkey = db.session.scalar(
        select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user.id))
    if passkey is None:
        return False
    check_proof(user, proof_text, now=now)
    discard(passkey)
    return True


def discard(passkey):
    """Delete ``passkey`` with its event (uncommitted): the caller has checked the right."""
    event_log.record(kinds.PASSKEY_REMOVED, actor=passkey.user,
                     data={"passkey_id": passkey.id, "name": passkey.name})
    db.session.delete(passkey)


def _request_options(user, challenge):
    passkeys = of_user(user)
    options = webauthn.generate_authentication_options(
        rp_id=relying_party().id, challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS, allow_credentials=_descriptors(passkeys),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return webauthn.options_to_json(options)


def assertion_options(transaction, user, now=None):
    """Options for navigator.credentials.get, with a new challenge bound to ``transaction``."""
    if not has_passkey(user):
        raise PasskeyError("You have no passkey yet. Register one under Passkeys, "
                           "then come back to this page.")
    return _request_options(user, _new_challenge(user, "verify", now or utcnow(), transaction))


def proof_options(user, now=None):
    """Options for navigator.credentials.get that prove it is ``user`` before a change to
    their passkeys or to how they are reached (uncommitted)."""
    if not has_passkey(user):
        raise PasskeyError("You have no passkey to prove it is you with.")
    return _request_options(user, _new_challenge(user, "prove", now or utcnow()))


def _signed_challenge(credential):
    """The challenge the browser says it signed, read from its client data."""
    try:
        client_data = json_input.parse(from_b64url(credential["response"]["clientDataJSON"]),
                                       max_chars=CREDENTIAL_MAX_CHARS)
        challenge = client_data["challenge"]
    except (KeyError, TypeError, ValueError):
        raise PasskeyError("Your browser's passkey answer was not readable. Try again.") from None
    if not isinstance(challenge, str):
        raise PasskeyError("Your browser's passkey answer was not readable. Try again.")
    return challenge


USED_UP = {
    "verify": "This passkey answer was already used or has expired. Each one works once: "
              "reload the page and try again.",
    "register": "This registration has expired or was already used. Start again.",
    "prove": "This proof with your passkey has expired or was already used. Try again.",
    "sign_in": "This sign-in with your passkey has expired or was already used. Try again.",
}


def _consume_challenge(challenge, *, user, purpose, now, transaction=None):
    """Mark the challenge used; PasskeyError unless it was made for this user (None: signing
    in) and purpose (and transaction), is unused and in time."""
    row = db.session.scalar(select(PasskeyChallenge).where(
        PasskeyChallenge.challenge == challenge[:128]))
    if row is None or row.user_id != (user.id if user else None) or row.purpose != purpose:
        if purpose == "register" and row is None:
            raise PasskeyError(USED_UP["register"])
        raise PasskeyError("This passkey answer was not asked for by this page. "
                           "Reload the page and try again.")
    if transaction is not None and row.transaction_id != transaction.id:
        raise PasskeyError("This passkey answer was made for a different request. "
                           "Reload this page and try again.")
    if not use_once(PasskeyChallenge, row.id, now):
        raise PasskeyError(USED_UP[purpose])


def _asserted_passkey(user, credential_text, purpose, now, transaction=None):
    """The user's passkey that signed a challenge made for ``purpose``, or PasskeyError. The
    challenge is used up whatever the outcome; the sign count and last use are updated."""
    credential = parse_credential(credential_text)
    challenge = _signed_challenge(credential)
    _consume_challenge(challenge, user=user, purpose=purpose, now=now, transaction=transaction)
    passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == credential["id"]))
    if passkey is None:
        raise PasskeyError("This passkey is not registered: it may have been removed. "
                           "Use another of your passkeys, or register this one again.")
    if passkey.user_id != user.id:
        raise PasskeyError("This passkey belongs to someone else. Use one of your own.")
    return _checked(passkey, credential, challenge, now)


def _checked(passkey, credential, challenge, now):
    """``passkey`` once its signature over ``challenge`` holds; the sign count and last use
    are updated."""
    rp = relying_party()
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=from_b64url(challenge),
            expected_rp_id=rp.id, expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count, require_user_verification=True)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyError(f"The passkey's answer was refused: {_reason(exc)}") from None
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = now
    return passkey


def check_proof(user, credential_text, now=None):
    """The passkey that proves it is ``user`` before a change, or PasskeyError."""
    if not credential_text:
        raise PasskeyError("Prove it is you with one of your passkeys first: your browser "
                           "asks for it when you save.")
    return _asserted_passkey(user, credential_text, "prove", now or utcnow())


# A passkey younger than this is called new on the timeline of a request it verifies.
NEW_PASSKEY_AGE = timedelta(days=1)


def check_assertion(transaction, user, credential_text, now=None):
    """The passkey that proves it is ``user`` answering ``transaction``, or PasskeyError.

    The challenge is used up whatever the outcome; on success the passkey's sign count and
    last use are updated and a ``passkey.used`` event recorded (all uncommitted).
    """
    now = now or utcnow()
    passkey = _asserted_passkey(user, credential_text, "verify", now, transaction)
    # A passkey added shortly before it is used may have been added by whoever knows the
    # user's password: the requestor's timeline says so, for the person on the phone to ask.
    event_log.record(kinds.PASSKEY_USED, transaction=transaction, actor=user,
                  data={"status": "pending", "passkey_id": passkey.id, "name": passkey.name,
                        "registered_at": passkey.created_at.isoformat(),
                        "new": now - passkey.created_at < NEW_PASSKEY_AGE})
    return passkey


def sign_in_options(now=None):
    """Options for navigator.credentials.get naming no user (uncommitted): any passkey of
    this site may answer (discoverable credentials, the browser's autofill); the challenge is
    kept for signing in, used once. Limits are per client address (client_limits)."""
    now = now or utcnow()
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    db.session.add(PasskeyChallenge(
        purpose="sign_in", user_id=None, challenge=b64url(challenge), created_at=now,
        expires_at=now + timedelta(seconds=CHALLENGE_TTL_SECONDS)))
    return webauthn.options_to_json(webauthn.generate_authentication_options(
        rp_id=relying_party().id, challenge=challenge, timeout=CEREMONY_TIMEOUT_MS,
        user_verification=UserVerificationRequirement.REQUIRED))


def signing_in(credential_text, now=None):
    """The user whose passkey signed a sign-in challenge, or PasskeyError (the challenge is
    used up whatever the outcome). The caller checks the account is active."""
    now = now or utcnow()
    credential = parse_credential(credential_text)
    challenge = _signed_challenge(credential)
    _consume_challenge(challenge, user=None, purpose="sign_in", now=now)
    passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == credential["id"]))
    handle = credential["response"].get("userHandle")
    if passkey is None or (handle and handle != b64url(_user_handle(passkey.user))):
        raise PasskeyError("This passkey is not registered here: it may have been removed. "
                           "Sign in with your password, or use another passkey.")
    return _checked(passkey, credential, challenge, now).user


def _reason(exc):
    """py_webauthn's explanation (it names no key material), cut to a sentence."""
    text = str(exc).strip() or exc.__class__.__name__
    return text[:200].rstrip(".") + "."
