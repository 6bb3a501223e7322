"""Enrolment links: the only way to a user's first passkey (and, for an invitation, their
own password).

An admin issues one from the users page (or an operator with ``flask --app wsgi
enrolment-link``): single use, expiring after ``ENROLMENT_TTL_SECONDS``, stored only as the
hash of its token, shown once or emailed to the user. Issuing a link for a user who has
passkeys is a *reset*: it removes nothing until the new passkey is registered through it
(then the old ones go), and it weakens the proof of what that user verifies for a day
(services.requests.risks). A newer link replaces an unused older one.

A passkey link is opened signed in as its user (the link and the password together); an
invitation, whose user has no password yet, sets it on the same page.
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from ... import channels
from ...channels.base import Notice
from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...core.rows import use_once
from ...core.secrets import SecretUnreadable
from ...core.tokens import new_token, stored_hash_of
from ...extensions import db
from ...models import EnrolmentLink, Passkey, utcnow
from . import accounts, passkeys


class EnrolmentError(ServiceError):
    """The link cannot be used; the message says why and what to do next."""


def url(token):
    return f"{current_app.config['BASE_URL']}/enrol/{token}"


def issue(user, *, actor, kind="passkey", now=None):
    """A new link for ``user`` (uncommitted); returns its token, which is never stored."""
    now = now or utcnow()
    if not accounts.may_manage(actor, user):
        raise EnrolmentError(f"{user.name} is an {user.role}: only an admin can issue them an "
                             "enrolment link.")
    if not user.active:
        raise EnrolmentError(f"{user.name} is deactivated: reactivate them first.")
    reset = kind == "passkey" and passkeys.has_passkey(user)
    db.session.execute(delete(EnrolmentLink).where(EnrolmentLink.user_id == user.id,
                                                   EnrolmentLink.used_at.is_(None)))
    token, token_hash = new_token()
    expires_at = now + timedelta(seconds=current_app.config["ENROLMENT_TTL_SECONDS"])
    db.session.add(EnrolmentLink(
        user_id=user.id, kind=kind, token_hash=token_hash, reset=reset,
        issued_by_id=actor.id if actor is not None else None, created_at=now,
        expires_at=expires_at))
    if reset:
        user.passkeys_reset_at = now
    event_log.record(kinds.USER_ENROLMENT_LINK_ISSUED, actor=actor, data={
        "email": user.email, "kind": kind, "reset": reset, "expires_at": expires_at.isoformat()})
    return token


def find(token, now=None):
    """The link behind ``token`` if it can still be used, else EnrolmentError."""
    now = now or utcnow()
    digest = stored_hash_of(token)
    link = None if digest is None else db.session.scalar(
        select(EnrolmentLink).where(EnrolmentLink.token_hash == digest))
    if link is None:
        raise EnrolmentError("This enrolment link is not valid: check that you copied all of "
                             "it, or ask an admin for a new one.")
    if link.used_at is not None:
        raise EnrolmentError("This enrolment link was already used: each works once. Ask an "
                             "admin for a new one if you need it.")
    if link.expires_at <= now:
        hours = current_app.config["ENROLMENT_TTL_SECONDS"] // 3600
        raise EnrolmentError(f"This enrolment link expired: each works for {hours} hours "
                             "after it is issued. Ask an admin for a new one.")
    if not link.user.active:
        raise EnrolmentError("This account is deactivated. Ask an admin to reactivate it.")
    return link


def complete(token, credential_text, *, name="", password=None, now=None):
    """Register the passkey through the link (and, for an invitation, set the password), then
    use the link up; all or nothing, uncommitted. Returns the passkey."""
    now = now or utcnow()
    link = find(token, now)
    user = link.user
    if link.kind == "invitation":
        try:
            accounts.check_password_rules(password or "", user=user)
        except accounts.AccountError as exc:
            raise EnrolmentError(str(exc), "password") from None
    try:
        passkey = passkeys.register(user, credential_text, name=name, now=now)
    except passkeys.PasskeyError as exc:
        raise EnrolmentError(str(exc)) from None
    if not use_once(EnrolmentLink, link.id, now):
        raise EnrolmentError("This enrolment link was already used: each works once. Ask an "
                             "admin for a new one if you need it.")
    if link.kind == "invitation":
        user.password_hash = accounts.hash_password(password)
    if link.reset:
        for old in db.session.scalars(select(Passkey).where(
                Passkey.user_id == user.id, Passkey.id != passkey.id)):
            passkeys.discard(old)
    event_log.record(kinds.USER_ENROLLED, actor=user, data={
        "email": user.email, "kind": link.kind, "reset": link.reset, "passkey": passkey.name})
    return passkey


def email(user, token, kind):
    """Email the link to the user's address through the email channel. Returns None when it
    was accepted, else why not, in words (never with the link in it)."""
    instance = channels.channel("email")
    link = url(token)
    ttl_hours = current_app.config["ENROLMENT_TTL_SECONDS"] / 3600
    what = "set your password and register" if kind == "invitation" else "register"
    notice = Notice(
        subject="Register your SendAuth passkey",
        text=(f"An admin of SendAuth sent you this link to {what} your passkey: {link} "
              f"It works once, for {ttl_hours:g} hours. If you did not expect it, tell your "
              "help desk and do not open it."))
    try:
        prepared = instance.prepare_notice(user, notice)
    except (channels.ChannelUnavailable, SecretUnreadable) as exc:
        return str(exc).rstrip(".")
    db.session.commit()  # no connection is held while the mail server answers
    result = channels.send(instance, prepared)
    if result.accepted:
        return None
    return (result.error or "the mail server refused it").replace(link, "[link]") \
        .replace(token, "[token]")

