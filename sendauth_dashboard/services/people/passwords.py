"""Changing one's own password.

The attacker of DESIGN.md's "Trust" knows the password; with it alone they could change it,
which signs the owner out everywhere and keeps them out. So where the user has a passkey a
change also needs a fresh assertion with it (as a contact change does), every change is
announced through the channels that reach the user (services.people.notices), and for a day
it is a risk signal on the requests sent to them (services.requests.risks).
"""
from ...core import event_kinds as kinds
from ...core import event_log
from ...models import utcnow
from . import accounts, notices, proofs


def change(user, *, current, new, credential=None, now=None):
    """Check the current password, the new one's rules and (with a passkey) the proof, then
    change it, uncommitted: every session of the user ends (the caller signs the current one
    in again). Raises accounts.AccountError or proofs.ProofError, changing nothing."""
    now = now or utcnow()
    accounts.check_password_change(user, current=current, new=new)
    proof = "password"
    if proofs.needed(user) == "passkey":
        proof = proofs.check(user, credential=credential, now=now)
    announced = notices.announce(user, notices.password_change(now))
    user.password_hash = accounts.hash_password(new)
    user.password_changed_at = now
    user.end_sessions()
    event_log.record(kinds.USER_PASSWORD_CHANGED, actor=user, data={
        "email": user.email, "proof": proof, "announced_through": announced})
