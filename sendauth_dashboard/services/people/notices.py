"""Telling a user about a change to their own account through the channels that reached them
before it, so a change made by someone else (who knew their password) does not go unseen.

Through the outbox, like every other delivery (a delivery of no transaction, ``action``
"notice"): queued in the change's database transaction with the addresses as they were
before the change, then sent by the dispatcher, retried after a provider's 5xx or a timeout,
and kept across a restart. Each attempt's outcome is an event among the user's own account
events (``profile.change_announced``).
"""
from ... import channels
from ...channels.base import Notice
from ...core import after_commit, event_log
from ...core import event_kinds as kinds
from ...core.secrets import SecretUnreadable
from ..outbox import deliveries
from ..requests import routing


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
    """Queue ``notice`` for every channel that reaches ``user`` now, in the current database
    transaction, and wake the dispatchers once it commits. Call it before changing how they
    are reached. Returns the channels it went to."""
    queued = []
    for name in routing.route(user).channels:
        try:
            deliveries.enqueue_notice(user, name, notice)
        except (channels.ChannelUnavailable, SecretUnreadable) as exc:
            event_log.record(kinds.PROFILE_CHANGE_ANNOUNCED, actor=user, data={
                "channel": name, "outcome": "failed", "error": str(exc)})
        else:
            queued.append(name)
    if queued:
        after_commit.later(deliveries.wake)
    return queued
