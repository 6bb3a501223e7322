"""Signed-in sessions the server knows of: signing out ends one for good, so a copy of its
cookie (taken before, from a shared machine or a proxy log) is refused afterwards.

The cookie carries a random token; the table keeps only its hash. Ending every session of a
user at once (deactivated, password changed) is ``User.end_sessions``.
"""
from datetime import timedelta

from sqlalchemy import delete, select, update

from ...core.tokens import new_token, stored_hash_of
from ...extensions import db
from ...models import SignIn, User, utcnow


def start(user, now=None):
    """A new signed-in session for ``user`` (uncommitted); returns the token for the cookie."""
    token, token_hash = new_token()
    db.session.add(SignIn(user_id=user.id, token_hash=token_hash, created_at=now or utcnow()))
    return token


def _still_open():
    """What a session that has not ended satisfies, as SQL conditions on SignIn."""
    return (SignIn.ended_at.is_(None),)


def user_of(token, user_id):
    """The user with ``user_id`` while the session behind ``token`` is theirs and has not
    ended, else None: one query, made on every request."""
    digest = stored_hash_of(token)
    if digest is None:
        return None
    return db.session.scalar(
        select(User).join(SignIn, SignIn.user_id == User.id)
        .where(User.id == user_id, SignIn.token_hash == digest, *_still_open()))


def open_sessions(user_id):
    """The hashes of ``user_id``'s sessions that have not ended: an open stream checks its
    own is still among them (services.live.rights)."""
    return frozenset(db.session.scalars(
        select(SignIn.token_hash).where(SignIn.user_id == user_id, *_still_open())))


def end(token, now=None):
    """End the session behind ``token`` (uncommitted); nothing if there is none."""
    digest = stored_hash_of(token)
    if digest is not None:
        db.session.execute(update(SignIn).where(SignIn.token_hash == digest,
                                                SignIn.ended_at.is_(None))
                           .values(ended_at=now or utcnow()))


# An ended session's row is kept this long (its cookie is refused just as well without it).
ENDED_KEPT = timedelta(days=1)


def prune(now):
    """Delete sessions ended more than ENDED_KEPT ago (uncommitted); returns how many."""
    return db.session.execute(delete(SignIn).where(SignIn.ended_at < now - ENDED_KEPT)).rowcount
