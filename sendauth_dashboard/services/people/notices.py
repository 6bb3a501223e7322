"""Telling a user about a change to their own account through the channels that reached them
before it, so a change made by someone else (who knew their password) does not go unseen.

Not through the outbox: the outbox carries transactions (each delivery belongs to one, is
cancelled with it and shows on its timeline), and a notice belongs to none. A notice is
prepared inside the change's database transaction, with the addresses as they were before
the change, and sent once it commits, on a thread of its own so the page never waits for a
provider; each channel's outcome is an event (``profile.change_announced``). It is sent
once: a provider that is down then is not retried, and the event says so.
"""
import logging
import threading

from flask import current_app

from ... import channels
from ...channels import integration
from ...channels.base import Notice
from ...core import after_commit, event_log
from ...core import event_kinds as kinds
from ...core.secrets import SecretUnreadable
from ...extensions import db
from ...models import User
from ..requests import routing

log = logging.getLogger(__name__)


def contact_change(user, changes, at):
    """The notice of a change to how ``user`` is reached, in words."""
    when = at.strftime("%Y-%m-%d %H:%M UTC")
    return Notice(
        subject="Your SendAuth messaging preferences changed",
        text=(f"Your SendAuth messaging preferences changed at {when}: {'; '.join(changes)}. "
              "If this was not you, tell your help desk now: someone may be trying to pass "
              "for you."))


def password_change(at):
    """The notice of a change to the user's password."""
    when = at.strftime("%Y-%m-%d %H:%M UTC")
    return Notice(
        subject="Your SendAuth password changed",
        text=(f"Your SendAuth password was changed at {when}, and every other session of yours "
              "was signed out. If this was not you, tell your help desk now: someone may be "
              "trying to pass for you."))


def announce(user, notice):
    """Prepare ``notice`` for every channel that reaches ``user`` now, and send it once the
    current database transaction commits. Call it before changing how they are reached."""
    prepared = []
    for name in routing.route(user).channels:
        instance = channels.channel(name)
        try:
            prepared.append((name, instance, instance.prepare_notice(user, notice)))
        except (channels.ChannelUnavailable, SecretUnreadable) as exc:
            event_log.record(kinds.PROFILE_CHANGE_ANNOUNCED, actor=user, data={
                "channel": name, "outcome": "failed", "error": str(exc)})
    if prepared:
        app = current_app._get_current_object()
        after_commit.later(_send_later, app, user.id, prepared)
    return [name for name, _, _ in prepared]


def _send_later(app, user_id, prepared):
    threading.Thread(target=_send, args=(app, user_id, prepared), daemon=True,
                     name="sendauth-notice").start()


def _send(app, user_id, prepared):
    with app.app_context():
        try:
            user = db.session.get(User, user_id)
            for name, instance, message in prepared:
                result = channels.send(instance, message)
                integration.record_outcome(name, success=result.accepted, error=result.error)
                event_log.record(kinds.PROFILE_CHANGE_ANNOUNCED, actor=user, data={
                    "channel": name, "outcome": result.outcome, "error": result.error})
                db.session.commit()
        except Exception:
            log.exception("announcing a change to user %s failed", user_id)
            db.session.rollback()
        finally:
            db.session.remove()
