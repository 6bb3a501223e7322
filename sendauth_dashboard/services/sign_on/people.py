"""Who an ID token says the person is, here: the account linked to its provider account, else
the account with its verified email (then linked), else a new member of an allowed domain;
and the role the provider's claim maps to.

A sign-in through the provider proves the directory record, not the person on the phone
(DESIGN.md, "Trust"): it never adds a passkey. A new account's first passkey still comes from
an enrolment link.
"""
from sqlalchemy import select

from ...core import event_kinds as kinds
from ...core import event_log
from ...core.text import control_character
from ...extensions import db
from ...models import ROLES, SignOnIdentity, User, role_rank, utcnow
from ..people import accounts
from .flow import SignOnError


def verified_email(settings, claims):
    """The ID token's email, lower-cased, once the provider says it verified it and its domain
    is one the organisation allows."""
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise SignOnError("The identity provider did not send your email address: ask an "
                          "admin to add the email scope (or claim) to the app there.")
    try:
        email = accounts.normalize_email(email)
    except accounts.AccountError:
        raise SignOnError("The identity provider sent an email address that is not valid: "
                          "ask an admin to check your account there.") from None
    # Entra ID says so with xms_edov (the domain's owner verified it), an optional claim.
    if claims.get("email_verified") is not True and claims.get("xms_edov") is not True:
        raise SignOnError(f"The identity provider has not verified {email}, so it cannot sign "
                          "you in here: verify your email address there, or ask an admin.")
    domain = email.rpartition("@")[2]
    if domain not in (settings.allowed_domains or []):
        raise SignOnError(f"{email} is not at an email domain this organisation signs in "
                          "(" + ", ".join(settings.allowed_domains or []) + "): sign in at "
                          "the provider with your work account, or ask an admin.")
    return email


def mapped_role(settings, claims):
    """The highest role the role claim's values map to; member when none does; None when no
    role claim is set (roles are then managed here)."""
    if not settings.role_claim:
        return None
    values = claims.get(settings.role_claim)
    values = values if isinstance(values, list) else [values]
    roles = [settings.role_map.get(str(v)) for v in values if isinstance(v, (str, int))]
    roles = [r for r in roles if r in ROLES]
    return max(roles, key=role_rank) if roles else "member"


def _name_of(claims, email):
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(p for p in parts if isinstance(p, str))
    name = " ".join(name.split())
    if not name or control_character(name):
        name = email.partition("@")[0]
    return name[:accounts.MAX_NAME_LENGTH]


def person_for(settings, claims, now=None):
    """The active user the checked ``claims`` sign in as, uncommitted: found, linked or made
    (with audit events), their role set from the role claim. Raises SignOnError."""
    now = now or utcnow()
    email = verified_email(settings, claims)
    subject = str(claims["sub"])
    identity = db.session.scalar(select(SignOnIdentity).where(
        SignOnIdentity.issuer == settings.issuer, SignOnIdentity.subject == subject))
    if identity is None:
        identity = _link(settings, subject, email, claims, now)
    user = identity.user
    if not user.active:
        raise SignOnError(f"The account {user.email} is deactivated here: ask an admin.")
    identity.last_used_at = now
    _apply_role(user, mapped_role(settings, claims))
    return user


def _link(settings, subject, email, claims, now):
    user = db.session.scalar(select(User).where(User.email == email))
    created = user is None
    if created:
        user = accounts.create_user(email=email, name=_name_of(claims, email),
                                    role=mapped_role(settings, claims) or "member",
                                    password=None)
    elif db.session.scalar(select(SignOnIdentity.id).where(
            SignOnIdentity.user_id == user.id, SignOnIdentity.issuer == settings.issuer)):
        raise SignOnError(f"The account {email} is linked to another account at the identity "
                          "provider, so this one cannot sign in as it: ask an admin.")
    identity = SignOnIdentity(user=user, issuer=settings.issuer, subject=subject,
                              created_at=now)
    db.session.add(identity)
    event_log.record(kinds.USER_SIGN_ON_LINKED, actor=user,
                     data={"email": email, "issuer": settings.issuer, "created": created})
    return identity


def _apply_role(user, role):
    """The provider's role, unless the account is a break-glass admin (their role is kept
    here: they are the way in when the provider is wrong) or the last admin."""
    if role is None or role == user.role or user.is_break_glass:
        return
    try:
        accounts.change_role(user, role, actor=None)
    except accounts.AccountError:
        pass  # the last active admin stays one: accounts says so when a person tries
