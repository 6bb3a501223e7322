"""The bearer token the identity provider sends to ``/scim/v2``.

Made here (``scim_…``), shown once (Settings → Sign-in, or ``flask --app wsgi scim-token``),
stored only as its SHA-256 with a short prefix to recognise it. One token is in use at a
time: issuing a new one (rotating) revokes the one before at once, so a leaked token stops
working the moment an admin rotates it. Issuing and revoking are audit events.
"""
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from ...core import event_kinds as kinds
from ...core import event_log
from ...core.tokens import hash_token
from ...extensions import db
from ...models import ScimToken, utcnow

TOKEN_PREFIX = "scim_"
# "scim_" and 6 characters of the secret: enough to tell tokens apart, far too few to guess.
SHOWN_CHARS = 11
# Writing "last used" on every request would make every read a write.
LAST_USED_EVERY = timedelta(seconds=60)


def current():
    """The token in use, or None when SCIM is off."""
    return db.session.scalar(select(ScimToken).where(ScimToken.revoked_at.is_(None))
                             .order_by(ScimToken.id.desc()))


def issue(*, actor, now=None):
    """A new token (uncommitted), revoking the one in use; returns the row and the secret,
    which is never stored."""
    now = now or utcnow()
    _revoke_all(now)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ScimToken(prefix=secret[:SHOWN_CHARS], token_hash=hash_token(secret),
                      created_by_id=actor.id if actor is not None else None, created_at=now)
    db.session.add(token)
    event_log.record(kinds.SCIM_TOKEN_ISSUED, actor=actor, data={"prefix": token.prefix})
    db.session.flush()
    return token, secret


def revoke(*, actor, now=None):
    """Revoke the token in use (uncommitted): SCIM is off until a new one is issued. False
    when there was none."""
    token = current()
    if token is None:
        return False
    _revoke_all(now or utcnow())
    event_log.record(kinds.SCIM_TOKEN_REVOKED, actor=actor, data={"prefix": token.prefix})
    return True


def _revoke_all(now):
    db.session.execute(update(ScimToken).where(ScimToken.revoked_at.is_(None))
                       .values(revoked_at=now))


def find(secret, now=None):
    """The token in use whose secret is ``secret``, or None; notes its use (at most every
    LAST_USED_EVERY)."""
    if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
        return None
    token = db.session.scalar(select(ScimToken).where(
        ScimToken.token_hash == hash_token(secret), ScimToken.revoked_at.is_(None)))
    now = now or utcnow()
    if token is not None and (token.last_used_at is None
                              or now - token.last_used_at >= LAST_USED_EVERY):
        token.last_used_at = now
    return token
