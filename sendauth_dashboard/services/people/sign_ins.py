"""Signed-in sessions the server knows of: signing out ends one for good, so a copy of its
cookie (taken before, from a shared machine or a proxy log) is refused afterwards. One also
ends SESSION_IDLE_SECONDS after it was last used, and SESSION_MAX_SECONDS after it began,
whatever the cookie says.

The cookie carries a random token; the table keeps only its hash. Ending every session of a
user at once (deactivated, password changed) is ``User.end_sessions``.
"""
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from ...core.tokens import new_token, stored_hash_of
from ...extensions import db
from ...models import SignIn, User, utcnow

log = logging.getLogger(__name__)

# A session's last use is written at most this often (not on every request).
SEEN_EVERY = timedelta(minutes=1)


def start(user, now=None):
    """A new signed-in session for ``user`` (uncommitted); returns the token for the cookie."""
    token, token_hash = new_token()
    now = now or utcnow()
    db.session.add(SignIn(user_id=user.id, token_hash=token_hash, created_at=now,
                          last_seen_at=now))
    return token


def _still_open(now):
    """What a session that has not ended at ``now`` satisfies, as SQL conditions on SignIn:
    not signed out, used within SESSION_IDLE_SECONDS, begun within SESSION_MAX_SECONDS."""
    config = current_app.config
    return (SignIn.ended_at.is_(None),
            SignIn.last_seen_at > now - timedelta(seconds=config["SESSION_IDLE_SECONDS"]),
            SignIn.created_at > now - timedelta(seconds=config["SESSION_MAX_SECONDS"]))


def user_of(token, user_id, now=None):
    """The user with ``user_id`` while the session behind ``token`` is theirs and has not
    ended, else None: one query, made on every request. Notes the session's use (at most
    every SEEN_EVERY)."""
    digest = stored_hash_of(token)
    if digest is None:
        return None
    now = now or utcnow()
    found = db.session.execute(
        select(User, SignIn.id, SignIn.last_seen_at).join(SignIn, SignIn.user_id == User.id)
        .where(User.id == user_id, SignIn.token_hash == digest, *_still_open(now))).first()
    if found is None:
        return None
    user, sign_in_id, last_seen_at = found
    if now - last_seen_at >= SEEN_EVERY:
        _seen(sign_in_id, now)
    return user


def _seen(sign_in_id, now):
    """Write the session's last use on a connection of its own, committed at once: the
    request's own database transaction is not touched. A failure (the database busy) costs
    nothing but this note."""
    try:
        with db.engine.begin() as connection:
            connection.execute(update(SignIn).where(SignIn.id == sign_in_id)
                               .values(last_seen_at=now))
    except SQLAlchemyError as exc:
        log.warning("a session's last use was not noted: %s", exc.__class__.__name__)


def open_sessions(user_id, now=None):
    """The hashes of ``user_id``'s sessions that have not ended: an open stream checks its
    own is still among them (services.live.rights)."""
    return frozenset(db.session.scalars(
        select(SignIn.token_hash).where(SignIn.user_id == user_id,
                                        *_still_open(now or utcnow()))))


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
    """Delete sessions that ended (signed out, idle, too old) more than ENDED_KEPT ago
    (uncommitted); returns how many."""
    config = current_app.config
    before = now - ENDED_KEPT
    return db.session.execute(delete(SignIn).where(or_(
        SignIn.ended_at < before,
        SignIn.last_seen_at < before - timedelta(seconds=config["SESSION_IDLE_SECONDS"]),
        SignIn.created_at < before - timedelta(seconds=config["SESSION_MAX_SECONDS"])))
    ).rowcount
