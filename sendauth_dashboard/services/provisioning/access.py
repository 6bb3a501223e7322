"""Switching a person's access on or off: the users page, the API and SCIM all come here.

Deactivating is one step, in one database transaction, each part with its audit event: the
account is marked inactive and its sessions end (``accounts.set_active``), so its next page
is refused; its open streams end as the ``user.deactivated`` event goes by (services.live
reads the person's standing again on every user event); its API keys stop, since a key
works only while its owner is active (``ApiKey.usable_at``); and every request still
waiting for its answer is cancelled, so nobody can answer as a leaver.
"""
from ..people import accounts
from ..requests import transactions


def set_active(user, active, *, actor, via=None, now=None):
    """Activate or deactivate ``user`` (uncommitted); False when nothing changed. ``via``
    names what did it when no person did (``"scim"``), for the audit log."""
    changed = accounts.set_active(user, active, actor=actor, via=via)
    if changed and not active:
        transactions.cancel_waiting_on(user, actor=actor, now=now,
                                       data={"via": via} if via else None)
    return changed
