"""Rate limits per client on the two pages worth guessing at (sign-in and the authentication
link), and on the address that providers post webhooks to.

Limits count per client address (see PROXY_FIX_X_FOR behind a proxy); sign-in also counts per
email, so spreading guesses over many addresses does not help against one account. The limits
are Flask-Limiter strings read from the config (LOGIN_RATE_LIMIT, AUTHENTICATE_RATE_LIMIT).
"""
import hashlib

from flask import current_app, request

from .extensions import limiter
from .services.people import accounts


def _configured(name):
    return lambda: current_app.config[name]


def _email_key():
    """The email a sign-in is for, hashed: a bounded key that keeps addresses out of Redis.
    Normalised as account lookup does (accounts.normalize_email), so a look-alike spelling
    of an address (full-width letters, say) counts against the same account."""
    typed = request.form.get("email") or ""
    try:
        email = accounts.normalize_email(typed)
    except accounts.AccountError:
        email = typed.strip().lower()
    prefix = current_app.config["REDIS_CHANNEL_PREFIX"]
    return f"{prefix}:email:" + hashlib.sha256(email.encode(errors="replace")).hexdigest()


def _failed_sign_in(response):
    """Only attempts that did not sign in count; a person who types the password right is
    never slowed down by colleagues behind the same address."""
    return response.status_code // 100 != 3


def sign_in(view):
    """POST /login: LOGIN_RATE_LIMIT failed attempts per client address and per email."""
    per_address = limiter.limit(
        _configured("LOGIN_RATE_LIMIT"), methods=["POST"], deduct_when=_failed_sign_in,
        error_message="Too many failed sign-in attempts from your address.")
    per_email = limiter.limit(
        _configured("LOGIN_RATE_LIMIT"), methods=["POST"], deduct_when=_failed_sign_in,
        key_func=_email_key, error_message="Too many failed sign-in attempts for this account.")
    return per_address(per_email(view))


def authentication_page(view):
    """/authenticate/<token>: AUTHENTICATE_RATE_LIMIT requests per client address."""
    return limiter.limit(
        _configured("AUTHENTICATE_RATE_LIMIT"),
        error_message="Too many requests for authentication links from your address.")(view)


def webhook(view):
    """POST /webhooks/...: WEBHOOK_RATE_LIMIT requests per client address (PagerDuty retries
    a 429)."""
    return limiter.limit(
        _configured("WEBHOOK_RATE_LIMIT"),
        error_message="Too many webhooks from your address.")(view)
