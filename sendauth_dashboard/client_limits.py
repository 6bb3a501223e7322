"""Rate limits per client on the two pages worth guessing at (sign-in and the authentication
link), and on the address that providers post webhooks to.

Limits count per client address (see PROXY_FIX_X_FOR behind a proxy); sign-in also counts per
email, so spreading guesses over many addresses does not help against one account. The limits
are Flask-Limiter strings read from the config (LOGIN_RATE_LIMIT, AUTHENTICATE_RATE_LIMIT).
Sign-in attempts are counted before the password is checked (services.people.attempts).
"""
import hashlib

from flask import current_app
from flask_limiter.util import get_remote_address

from .extensions import limiter
from .services.people import accounts, attempts


def _configured(name):
    return lambda: current_app.config[name]


def _email_hash(typed):
    """The email a sign-in is for, hashed: a bounded key that keeps addresses out of Redis.
    Normalised as account lookup does (accounts.normalize_email), so a look-alike spelling
    of an address (full-width letters, say) counts against the same account."""
    try:
        email = accounts.normalize_email(typed)
    except accounts.AccountError:
        email = (typed or "").strip().lower()
    return hashlib.sha256(email.encode(errors="replace")).hexdigest()


def sign_in_attempt(email):
    """POST /login: one attempt counted against LOGIN_RATE_LIMIT per client address and per
    email before the password is checked (attempts.TooManyAttempts past it); the caller
    gives it back when the password was right."""
    return attempts.take("LOGIN_RATE_LIMIT", {
        f"address:{get_remote_address()}": "Too many failed sign-in attempts from your address.",
        f"email:{_email_hash(email)}": "Too many failed sign-in attempts for this account.",
    })


def authentication_page(view):
    """/authenticate/<token>: AUTHENTICATE_RATE_LIMIT requests per client address."""
    return limiter.limit(
        _configured("AUTHENTICATE_RATE_LIMIT"),
        error_message="Too many requests for authentication links from your address.")(view)


def passkey_sign_in(view):
    """/login/passkey-options and /login/passkey: PASSKEY_SIGN_IN_RATE_LIMIT requests per
    client address (no email names an account before the passkey does)."""
    return limiter.limit(
        _configured("PASSKEY_SIGN_IN_RATE_LIMIT"),
        error_message="Too many passkey sign-ins from your address.")(view)


def answer_status(view):
    """/authenticate/<token>/status, polled by an open answer page: ANSWER_STATUS_RATE_LIMIT
    requests per client address."""
    return limiter.limit(
        _configured("ANSWER_STATUS_RATE_LIMIT"),
        error_message="Too many status checks for authentication links from your address.")(view)


def webhook(view):
    """POST /webhooks/...: WEBHOOK_RATE_LIMIT requests per client address (PagerDuty retries
    a 429)."""
    return limiter.limit(
        _configured("WEBHOOK_RATE_LIMIT"),
        error_message="Too many webhooks from your address.")(view)
