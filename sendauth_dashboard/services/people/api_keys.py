"""API keys: a program (a ticketing tool's button, a script, a bot) acting for one person.

A user makes their own keys (Profile → API keys): a name, scopes and an expiry of at most a
year. The key (``sa_…``) is shown once and stored only as its SHA-256, with a short prefix to
recognise it. A key acts as its owner with at most the owner's role *now*: each request reads
the owner again, so demoting them narrows every key at once, and deactivating them ends every
key (``ApiKey.usable_at``). A key never adds a way to prove who someone is. Making and revoking
one are audit events, announced to the owner through the channels that reach them.
"""
import secrets
from datetime import timedelta

from sqlalchemy import select

from ...channels.base import Notice
from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...core.text import control_character
from ...core.tokens import hash_token
from ...extensions import db
from ...models import API_SCOPES, ApiKey, utcnow
from . import notices

KEY_PREFIX = "sa_"
# "sa_" and 7 characters of the secret: enough to tell one's keys apart, far too few to guess.
SHOWN_CHARS = 10
MAX_DAYS = 365
MAX_NAME_LENGTH = 64
# Writing "last used" on every request would make every API call a write: once a minute
# (or from a new address) says as much.
LAST_USED_EVERY = timedelta(seconds=60)

# The least role that may use each scope: the same as the pages that do the same.
SCOPE_ROLES = {
    "transactions:read": "requestor",
    "transactions:write": "requestor",
    "users:read": "registrar",
    "users:write": "registrar",
    "audit:read": "admin",
    "webhooks:manage": "admin",
    "routing:manage": "admin",
    "groups:manage": "admin",
}
SCOPE_LABELS = {
    "transactions:read": "Read transactions (requestors: the ones they sent)",
    "transactions:write": "Send and cancel requests",
    "users:read": "Read users (registrars)",
    "users:write": "Invite users, change roles, issue enrolment links (registrars)",
    "audit:read": "Read the audit log (admins)",
    "webhooks:manage": "Set up outgoing webhooks: endpoints, secrets, replays (admins)",
    "routing:manage": "Set up routing rules from a request's tags to a person or group "
                      "(admins)",
    "groups:manage": "Set up approval groups: members and threshold (admins)",
}


class ApiKeyError(ServiceError):
    """A key cannot be made as asked; the message says why."""


def scopes_for(user):
    """The scopes ``user``'s role lets them give a key."""
    return [scope for scope in API_SCOPES if user.has_role(SCOPE_ROLES[scope])]


def create(owner, *, name, scopes, days, actor=None, now=None):
    """A new key for ``owner`` (uncommitted) and its secret, which is never stored."""
    now = now or utcnow()
    name = (name or "").strip()
    if not name:
        raise ApiKeyError("Give the key a name: what uses it, such as \"Jira button\".", "name")
    if len(name) > MAX_NAME_LENGTH:
        raise ApiKeyError(f"The name must be at most {MAX_NAME_LENGTH} characters; yours has "
                          f"{len(name)}.", "name")
    if bad := control_character(name):
        raise ApiKeyError(f"The name contains {bad}: write it on one line.", "name")
    scopes = list(dict.fromkeys(scopes or []))
    if not scopes:
        raise ApiKeyError("Choose at least one scope: what the key may do.", "scopes")
    unknown = [s for s in scopes if s not in API_SCOPES]
    if unknown:
        raise ApiKeyError(f"Unknown scope {unknown[0]!r}: choose from {', '.join(API_SCOPES)}.",
                          "scopes")
    beyond = [s for s in scopes if s not in scopes_for(owner)]
    if beyond:
        raise ApiKeyError(f"A {owner.role} cannot give a key the scope {beyond[0]}: it needs "
                          f"the role {SCOPE_ROLES[beyond[0]]}.", "scopes")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ApiKeyError(f"A key expires after 1 to {MAX_DAYS} days: choose how many.",
                          "expires_in_days")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(user=owner, name=name, prefix=secret[:SHOWN_CHARS], token_hash=hash_token(secret),
                 scopes=[s for s in API_SCOPES if s in scopes], created_at=now,
                 expires_at=now + timedelta(days=days))
    db.session.add(key)
    _record(kinds.API_KEY_CREATED, key, actor or owner,
            f"An API key named {name!r} was created for your SendAuth account, with "
            f"{', '.join(key.scopes)}, until {key.expires_at:%Y-%m-%d}.")
    db.session.flush()
    return key, secret


def revoke(key, *, actor, now=None):
    """Revoke ``key`` (uncommitted); False when it was revoked already."""
    if key.revoked_at is not None:
        return False
    if actor.id != key.user_id and not actor.has_role("admin"):
        raise PermissionError("only the key's owner or an admin may revoke it")
    key.revoked_at = now or utcnow()
    _record(kinds.API_KEY_REVOKED, key, actor,
            f"The API key named {key.name!r} ({key.prefix}…) of your SendAuth account was "
            "revoked: programs using it can no longer act for you.")
    return True


def _record(kind, key, actor, text):
    event_log.record(kind, actor=actor, data={
        "email": key.user.email, "name": key.name, "prefix": key.prefix, "scopes": key.scopes,
        "expires_at": key.expires_at.isoformat()})
    notices.announce(key.user, Notice(
        subject="SendAuth API key " + ("created" if kind == kinds.API_KEY_CREATED else "revoked"),
        text=text + " If this was not you, tell your help desk now."))


def find(secret, now=None):
    """The usable key whose secret is ``secret``, or None (unknown, revoked, expired, or its
    owner deactivated)."""
    if not isinstance(secret, str) or not secret.startswith(KEY_PREFIX) or len(secret) > 128:
        return None
    key = db.session.scalar(select(ApiKey).where(ApiKey.token_hash == hash_token(secret)))
    if key is None or not key.usable_at(now or utcnow()):
        return None
    return key


def note_use(key, address, now=None):
    """Remember when and from where the key was last used (not on every request)."""
    now = now or utcnow()
    if key.last_used_at is None or key.last_used_from != address or \
            now - key.last_used_at >= LAST_USED_EVERY:
        key.last_used_at, key.last_used_from = now, (address or "")[:64]
        return True
    return False


def refusal(key, scope):
    """Why ``key`` may not act with ``scope`` (its scopes, its owner's role now), or None."""
    if scope not in key.scopes:
        return f"This API key does not have the scope {scope}."
    if not key.user.has_role(SCOPE_ROLES[scope]):
        return (f"The key's owner is a {key.user.role} now; {scope} needs the role "
                f"{SCOPE_ROLES[scope]}.")
    return None


def keys_of(user):
    return db.session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id.desc())).all()


def every_key():
    return db.session.scalars(select(ApiKey).order_by(ApiKey.id.desc())).all()


def find_by_id(key_id):
    return db.session.get(ApiKey, key_id)
