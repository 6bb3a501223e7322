"""A request sent to an approval group: every member the request can reach is notified through
their own channels with their own single-use link (an Approval each, the same outbox); each
answers with their own passkey, with no call-binding code (there is no phone call). The request
is verified once ``threshold`` members have verified, denied at the first deny, and expires at
its time. The requestor, when a member, is not asked: nobody approves their own request.

The members and the threshold are those of the group when it was sent (its Approval rows and
``Transaction.threshold``): changing the group later never changes a request already sent.
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from ...core import after_commit, event_log, rows
from ...core import event_kinds as kinds
from ...core.tokens import new_token, stored_hash_of
from ...extensions import db
from ...models import Approval, Transaction, utcnow
from ..outbox import deliveries
from ..people import passkeys, proofs
from ..reports import organisation, tallies
from ..requests import routing, transactions, verification
from ..requests.transactions import TransactionError

REQUESTOR_NOT_ASKED = "the requestor: nobody approves their own request"


def _why_not(member, requestor):
    """Why ``member`` cannot be asked, or None when they can (with their channels)."""
    if member.id == requestor.id:
        return REQUESTOR_NOT_ASKED, ()
    if not member.active:
        return "deactivated", ()
    route = routing.route(member)
    if not route.channels:
        return f"no channel reaches them ({route.explain(member)})", ()
    if organisation.requires_passkey() and not passkeys.has_passkey(member):
        return "no passkey yet, which the organisation requires", ()
    return None, route.channels


def _ballots(group, requestor):
    """(member, reason not asked or None, channels) for each member, by name."""
    return [(member, *_why_not(member, requestor)) for member in group.members]


def create(*, requestor, group, message, context="", ticket=None, api_key=None,
           routed_by=None, payload=None, now=None):
    """The group request, one Approval per member, each asked member's deliveries and the
    ``transaction.created`` event, uncommitted; TransactionError when fewer members can be
    asked than must approve."""
    now = now or utcnow()
    message, context = transactions.checked_text(message, context)
    payload = transactions.checked_payload(payload)
    ballots = _ballots(group, requestor)
    asked = [(member, channels) for member, why, channels in ballots if why is None]
    if len(asked) < group.threshold:
        reasons = "; ".join(f"{m.name}: {why}" for m, why, _ in ballots if why)
        raise TransactionError(
            f"{group.name} needs {group.threshold} approvals, but only {len(asked)} of its "
            f"members can be asked ({reasons}). Add members or lower the threshold under "
            "Settings → Approval groups, or send the request to a person.", "group")
    for member, _ in asked:
        transactions.check_sending_limits(requestor, member, now)
    transaction = Transaction(
        requestor=requestor, user=asked[0][0], message=message, context=context,
        binding_code=None, risks=[], token_hash=new_token()[1], created_at=now,
        api_key_id=api_key.id if api_key else None, payload=payload,
        group_id=group.id, group_name=group.name, threshold=group.threshold,
        **transactions.ticket_columns(ticket),
        expires_at=now + timedelta(seconds=current_app.config["TRANSACTION_TTL_SECONDS"]))
    db.session.add(transaction)
    tallies.request_sent(transaction)
    used = []
    for member, why, channels in ballots:
        token = token_hash = None
        if why is None:
            token, token_hash = new_token()
            for delivery in deliveries.enqueue(transaction, channels,
                                               transactions.answer_link(token)):
                delivery.user_id = member.id
                db.session.add(delivery)
            used += [c for c in channels if c not in used]
        db.session.add(Approval(transaction=transaction, user=member, token_hash=token_hash,
                                not_asked=why))
    after_commit.later(deliveries.wake)
    event_log.record(kinds.TRANSACTION_CREATED, transaction=transaction, actor=requestor, data={
        "status": "pending", "channels": used, "risks": [], "group": group.name,
        "threshold": group.threshold, "asked": [m.name for m, _ in asked],
        "not_asked": {m.name: why for m, why, _ in ballots if why},
        **({"api_key": f"{api_key.name} ({api_key.prefix}…)"} if api_key else {}),
        **({"routed_by": routed_by} if routed_by else {}),
        **({"ticket": transaction.ticket_id} if transaction.ticket_id else {})})
    return transaction


def find_by_token(token):
    """The Approval whose single-use link this is, or None."""
    digest = stored_hash_of(token)
    if digest is None:
        return None
    return db.session.scalar(select(Approval).where(Approval.token_hash == digest))


def answer(approval, decision, *, proof=None, now=None):
    """Record the member's answer (the caller checked their proof), then end the request when
    it decides it: the first deny denies, the threshold's verify verifies. Single use: a second
    answer by the same member, or one after the request ended, changes nothing. Returns
    transactions.Outcome with the member's own decision when it counted."""
    now = now or utcnow()
    transaction = approval.transaction
    status = "verified" if decision == "verify" else "denied"
    # One answer at a time per request: the count read next cannot change under it.
    rows.lock(Transaction, Transaction.id == transaction.id)
    db.session.refresh(transaction)
    if not transaction.pending_at(now):
        return transactions.Outcome(False, transaction.status_at(now))
    counted = db.session.execute(
        update(Approval).where(Approval.id == approval.id, Approval.decision.is_(None))
        .values(decision=status, answered_at=now, proof=proof)
        .execution_options(synchronize_session="fetch")).rowcount
    if not counted:
        return transactions.Outcome(False, approval.decision or "pending")
    db.session.refresh(transaction, ["approvals"])
    needed = transaction.approvals_needed
    member = approval.user
    event_log.record(kinds.APPROVAL_BECAME[status], transaction=transaction, actor=member,
                     data={"status": "pending", "proof": proof, "group": transaction.group_name,
                           "approvals_needed": needed, "threshold": transaction.threshold,
                           "member_id": member.id, "answer": ANSWER_WORDS[status]})
    if status == "denied":
        transactions.end(transaction, "denied", actor=member, now=now,
                         data={"group": transaction.group_name, "proof": proof})
    elif needed == 0:
        transactions.end(transaction, "verified", actor=member, now=now,
                         data={"group": transaction.group_name, "proof": proof})
    return transactions.Outcome(True, status)


ANSWER_WORDS = {"verified": "approved", "denied": "denied"}


def progress(transaction):
    """Each member's part, for the page: (member, what they did in words)."""
    return [(a.user, ANSWER_WORDS.get(a.decision) or (
        f"not asked: {a.not_asked}" if a.not_asked else "waiting")) for a in transaction.approvals]


def answer_as_member(approval, decision, *, signed_in=False, credential=None, password=None,
                     now=None):
    """The member proves it is them, then answers. Signed out, one assertion by one of their
    own passkeys (for verify and deny alike); signed in as them, deny needs nothing more and
    verify their passkey (or password, where the organisation allows it). Raises
    VerificationError (still pending; the caller commits the used-up challenge) when the proof
    fails."""
    now = now or utcnow()
    member, transaction = approval.user, approval.transaction
    if signed_in and decision == "deny":
        return answer(approval, "deny", now=now)
    proof = proofs.needed(member, answering=True) if signed_in else "passkey"
    verification.prove(transaction, member, proof, credential=credential, password=password,
                       now=now, to="approve")
    return answer(approval, decision, proof=proof, now=now)
