"""Authentication requests: send, answer, cancel, expire.

``pending`` → ``verified`` | ``denied`` | ``cancelled`` | ``expired``, nothing else. Every change
is one conditional UPDATE (``WHERE status = 'pending'``) and one event in the same database
transaction, so two answers racing each other cannot both win.
"""
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from ...core import after_commit, event_log, rows
from ...core import event_kinds as kinds
from ...core.errors import ServiceError
from ...core.text import control_character
from ...core.tokens import new_token, stored_hash_of
from ...extensions import db
from ...models import Event, Transaction, User, utcnow
from ..outbox import deliveries
from ..people import accounts, passkeys
from ..reports import organisation, tallies
from . import pagerduty_incidents, risks, routing

MESSAGE_MAX_CHARS = 1024
CONTEXT_MAX_CHARS = 1024
SWEEP_BATCH = 500


class TransactionError(ServiceError):
    """A request cannot be sent as asked; the message says why and what to do."""


class SendLimitReached(TransactionError):
    """Too many requests in the window; ``retry_after``: seconds until the next may go."""

    def __init__(self, message, field, retry_after):
        super().__init__(message, field)
        self.retry_after = retry_after


class Unreachable(TransactionError):
    """No channel can reach the user; ``reasons``: each channel's, in words."""

    def __init__(self, message, field, reasons):
        super().__init__(message, field)
        self.reasons = reasons


def answer_link(token):
    return f"{current_app.config['BASE_URL']}/authenticate/{token}"


def _check_length(value, limit, field, label):
    if len(value) > limit:
        raise TransactionError(
            f"The {label} must be at most {limit} characters; yours has {len(value)}.", field
        )


def _check_characters(value, field, label):
    # Line breaks and tabs are the text's own; other control characters are not writing.
    bad = control_character(value, allowed="\n\t")
    if bad:
        raise TransactionError(
            f"The {label} contains {bad}. Remove it: only line breaks and tabs are allowed.",
            field)


def _next_allowed_at(where, limit, now):
    """When one more request may go, if ``limit`` ([N, seconds]) is reached now among the
    transactions that match ``where``, else None."""
    allowed, seconds = limit
    window = timedelta(seconds=seconds)
    recent = db.session.scalars(
        select(Transaction.created_at)
        .where(*where, Transaction.created_at > now - window)
        .order_by(Transaction.created_at.desc()).limit(allowed)).all()
    if len(recent) < allowed:
        return None
    return recent[-1] + window


def _wait_words(seconds):
    seconds = max(1, int(seconds + 0.999))
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{(seconds + 59) // 60} minutes"


def check_sending_limits(requestor, user, now):
    """Requests cost the people they reach (a page, an SMS): so many per requestor
    (SEND_LIMIT_PER_REQUESTOR), per requestor to one user (SEND_LIMIT_PER_REQUESTOR_AND_USER)
    and to one user from everyone together (SEND_LIMIT_PER_USER, higher: one requestor's
    sends do not stop the rest of the help desk reaching them), in a window.

    The requestor's and the user's rows are locked first (core.rows.lock) and held to the
    commit that inserts the transaction: the counts and the insert are one step, so requests
    sent together cannot all pass a limit that has room for one."""
    rows.lock(User, User.id.in_({requestor.id, user.id}))
    config = current_app.config
    by_requestor = Transaction.requestor_id == requestor.id
    to_user = Transaction.user_id == user.id
    checks = (
        ((by_requestor,), config["SEND_LIMIT_PER_REQUESTOR"],
         "You have sent {n} requests in the last {window}, the most allowed"),
        ((by_requestor, to_user), config["SEND_LIMIT_PER_REQUESTOR_AND_USER"],
         f"You have sent {user.name} {{n}} requests in the last {{window}}, the most one "
         "person may (others on the help desk still can)"),
        ((to_user,), config["SEND_LIMIT_PER_USER"],
         f"{user.name} has been sent {{n}} requests in the last {{window}}, the most allowed"),
    )
    for where, limit, said in checks:
        next_at = _next_allowed_at(where, limit, now)
        if next_at is not None:
            raise SendLimitReached(
                said.format(n=limit[0], window=_wait_words(limit[1])) +
                f". The next one can go in {_wait_words((next_at - now).total_seconds())} "
                f"(at {next_at:%H:%M:%S} UTC).", "user",
                retry_after=max(1, int((next_at - now).total_seconds() + 0.999)))


def checked_text(message, context):
    """The message and context as kept; TransactionError saying what to fix."""
    message = (message or "").strip()
    context = (context or "").strip()
    if not message:
        raise TransactionError("Enter a message: tell the user why you are asking.", "message")
    _check_length(message, MESSAGE_MAX_CHARS, "message", "message")
    _check_length(context, CONTEXT_MAX_CHARS, "context", "context")
    message = message.replace("\r\n", "\n")
    context = context.replace("\r\n", "\n")
    _check_characters(message, "message", "message")
    _check_characters(context, "context", "context")
    return message, context


PAYLOAD_MAX_BYTES = 8192


def checked_payload(payload):
    """The payload (JSON an API client hands over for its tool to act on when the request
    ends), at most PAYLOAD_MAX_BYTES written compactly as UTF-8."""
    if payload is None:
        return None
    size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    if size > PAYLOAD_MAX_BYTES:
        raise TransactionError(f"The payload must be at most {PAYLOAD_MAX_BYTES} bytes of JSON; "
                               f"yours has {size}. Keep ids and references in it, not "
                               "documents.", "payload")
    return payload


def create(*, requestor, user_email, message, context="", ticket=None, api_key=None,
           routed_by=None, payload=None, now=None):
    """The transaction, its deliveries and its ``transaction.created`` event, uncommitted.
    ``ticket``: the help desk's ticket it is for ({"system", "id", "url"}, each optional);
    ``api_key``: the key that sent it (the API), the one that is given its code;
    ``routed_by``: the routing rule that chose the user, in words, for the timeline;
    ``payload``: JSON handed on in the webhook when the request ends."""
    now = now or utcnow()
    user = accounts.find_by_email(user_email)
    if user is None or not user.active:
        raise TransactionError(
            f"There is no active user with the email {user_email.strip()!r}. "
            "Check the address, or ask an admin to add or reactivate them.", "user")
    if user.id == requestor.id:
        raise TransactionError("You cannot send an authentication request to yourself.", "user")
    message, context = checked_text(message, context)
    payload = checked_payload(payload)
    check_sending_limits(requestor, user, now)
    route = routing.route(user)
    if not route.channels:
        raise Unreachable(route.explain(user), "user", {
            name: why for name, why in route.skipped.items()})
    if organisation.requires_passkey() and not passkeys.has_passkey(user):
        raise TransactionError(
            f"{user.name} has no passkey yet, and your organisation requires one to verify a "
            "request. Ask them to register one under Passkeys in their profile, then send the "
            "request again.", "user")

    token, token_hash = new_token()
    transaction = Transaction(
        requestor=requestor, user=user, message=message, context=context,
        binding_code=new_binding_code(), risks=risks.of_user(user, now),
        token_hash=token_hash, created_at=now, api_key_id=api_key.id if api_key else None,
        payload=payload, **ticket_columns(ticket),
        expires_at=now + timedelta(seconds=current_app.config["TRANSACTION_TTL_SECONDS"]),
    )
    db.session.add(transaction)
    tallies.request_sent(transaction)
    db.session.add_all(deliveries.enqueue(transaction, route.channels, answer_link(token)))
    after_commit.later(deliveries.wake)
    sent_through = {"api_key": f"{api_key.name} ({api_key.prefix}…)"} if api_key else {}
    event_log.record(kinds.TRANSACTION_CREATED, transaction=transaction, actor=requestor,
                     data={"status": "pending", "channels": list(route.channels),
                           "risks": transaction.risks, **sent_through,
                           **({"routed_by": routed_by} if routed_by else {}),
                           **({"ticket": transaction.ticket_id} if transaction.ticket_id
                              else {})})
    return transaction


TICKET_LIMITS = {"system": 64, "id": 128, "url": 2048}


def ticket_columns(ticket):
    """The ticket reference's columns; each part at most its length, on one line."""
    columns = {}
    for part, limit in TICKET_LIMITS.items():
        value = ((ticket or {}).get(part) or "").strip()
        _check_length(value, limit, "ticket", f"ticket's {part}")
        if bad := control_character(value):
            raise TransactionError(f"The ticket's {part} contains {bad}: write it on one line.",
                                   "ticket")
        columns[f"ticket_{part}"] = value or None
    return columns


BINDING_CODE_DIGITS = 3


def new_binding_code():
    """The code the requestor reads to the user, who types it: three random digits."""
    return f"{secrets.randbelow(10 ** BINDING_CODE_DIGITS):0{BINDING_CODE_DIGITS}d}"


def end(transaction, status, *, actor, now, data=None):
    """Move a pending transaction to ``status`` with its event (a group's answers decide it:
    services.approvals.group_requests); False if it was not pending."""
    return _transition(transaction, status, actor=actor, now=now, data=data)


def _transition(transaction, status, *, actor, now, completed_at=None, data=None):
    """Move a pending transaction to ``status`` with its event; False if it was not pending."""
    still = Transaction.overdue_at(now) if status == "expired" else Transaction.pending_at(now)
    result = db.session.execute(
        update(Transaction).where(Transaction.id == transaction.id, still)
        .values(status=status, completed_at=completed_at or now)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:
        return False
    deliveries.cancel_open(transaction.id, f"The transaction was {status}.", now)
    # After the deliveries' rows: tallying takes the event-order lock (services.reports.tallies),
    # which a dispatcher takes after its delivery's row.
    tallies.request_ended(transaction, status, completed_at or now)
    event_log.record(kinds.TRANSACTION_BECAME[status], transaction=transaction, actor=actor,
                  data={"status": status, **(data or {})})
    pagerduty_incidents.resolve_when_final(transaction)
    return True


@dataclass(frozen=True)
class Outcome:
    changed: bool
    status: str


def find_by_token(token):
    digest = stored_hash_of(token)
    if digest is None:
        return None
    return db.session.scalar(select(Transaction).where(Transaction.token_hash == digest))


def answer(transaction, decision, *, user, now=None, data=None):
    """The user verifies or denies; single use. The caller has checked it is their transaction,
    and for ``verify`` that they proved it is them (services.requests.verification does both)."""
    if decision not in ("verify", "deny"):
        raise TransactionError("Choose verify or deny.", "decision")
    if transaction.user_id != user.id:
        raise PermissionError("only the transaction's user may answer it")
    now = now or utcnow()
    status = "verified" if decision == "verify" else "denied"
    changed = _transition(transaction, status, actor=user, now=now, data=data)
    return Outcome(changed, status if changed else _current_status(transaction, now))


def may_cancel(transaction, user):
    return user.id == transaction.requestor_id or user.has_role("admin")


def cancel(transaction, *, actor, now=None):
    if not may_cancel(transaction, actor):
        raise PermissionError("only the requestor or an admin may cancel")
    now = now or utcnow()
    changed = _transition(transaction, "cancelled", actor=actor, now=now)
    return Outcome(changed, "cancelled" if changed else _current_status(transaction, now))


def cancel_waiting_on(user, *, actor, now=None, data=None):
    """Cancel every request still waiting for ``user``'s answer, each with its event
    (uncommitted): they are leaving, so nobody may answer as them. Returns how many."""
    now = now or utcnow()
    # A group request goes on without them: their own link stops working (a group's user is
    # only its first member asked).
    waiting = db.session.scalars(select(Transaction).where(
        Transaction.user_id == user.id, Transaction.threshold.is_(None),
        Transaction.pending_at(now))).all()
    return sum(_transition(t, "cancelled", actor=actor, now=now,
                           data={"reason": "the user was deactivated", **(data or {})})
               for t in waiting)


def _current_status(transaction, now):
    db.session.refresh(transaction)
    return transaction.status_at(now)


def expire_due(now=None):
    """Expire pending transactions past their time, each with its event. Commits; returns
    how many."""
    now = now or utcnow()
    overdue = db.session.scalars(
        select(Transaction).where(Transaction.overdue_at(now))
        .order_by(Transaction.expires_at).limit(SWEEP_BATCH)
    ).all()
    expired = sum(
        _transition(t, "expired", actor=None, now=now, completed_at=t.expires_at) for t in overdue
    )
    db.session.commit()
    return expired


def visible_to(viewer):
    """Reviewers and admins see every transaction; requestors the ones they sent."""
    query = select(Transaction)
    if not viewer.has_role("reviewer"):
        query = query.where(Transaction.requestor_id == viewer.id)
    return query


def find_visible(viewer, public_id):
    return db.session.scalar(visible_to(viewer).where(Transaction.public_id == public_id))


def timeline(transaction):
    return db.session.scalars(
        select(Event).where(Event.transaction_id == transaction.id).order_by(Event.id)
    ).all()


def next_expiry_in(now=None):
    """Seconds until the next pending transaction expires, or None if none is pending."""
    now = now or utcnow()
    soonest = db.session.scalar(
        select(func.min(Transaction.expires_at)).where(Transaction.status == "pending"))
    return None if soonest is None else max(0.0, (soonest - now).total_seconds())
