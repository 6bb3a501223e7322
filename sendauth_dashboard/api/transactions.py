"""``/api/v1/transactions``: send a request, read it (waiting for its answer), list, cancel,
and its timeline. Thin: the rules are the send form's and the list's own services."""
from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..core import event_kinds as kinds
from ..core.ids import MAX_ROW_ID
from ..extensions import db
from ..models import Event, Transaction, User, utcnow
from ..services.approvals import group_requests, groups, tag_rules
from ..services.live.words import describe
from ..services.requests import (
    delivery_report,
    pagerduty_incidents,
    risks,
    transaction_list,
    transactions,
    waiting,
)
from . import auth, bp, schemas
from .problems import Problem
from .spec import field_problem, operation

TAG = "Transactions"
NOT_FOUND = "There is no transaction with this id that your key may see."


def transaction_out(t, key, proofs=None):
    """A transaction as the API shows it; the code only to the key that sent it."""
    incident = t.pagerduty_incident
    page = current_app.config["BASE_URL"] + url_for("transactions.show", public_id=t.public_id)
    return schemas.Transaction(
        id=t.public_id, status=t.status_at(utcnow()),
        code=t.binding_code if t.api_key_id == key.id else None,
        message=t.message, context=t.context or "",
        user=_person(t.user), requestor=_person(t.requestor),
        created_at=t.created_at, expires_at=t.expires_at, completed_at=t.completed_at,
        answered_how=(proofs if proofs is not None else _proofs([t])).get(t.id),
        channels=[d.channel for d in t.deliveries if d.action == "notify"],
        deliveries=[schemas.Delivery(channel=r.channel, state=r.state, attempts=r.attempts,
                                     answer=r.answer) for r in delivery_report.rows(t)],
        risks=risks.words(t.risks, t.user.name),
        pagerduty_incident=None if incident is None else schemas.Incident(
            state=pagerduty_incidents.state_words(incident), number=incident.number,
            url=incident.html_url),
        ticket=None if not (t.ticket_system or t.ticket_id or t.ticket_url) else schemas.Ticket(
            system=t.ticket_system, id=t.ticket_id, url=t.ticket_url),
        group=_group_progress(t), payload=t.payload,
        links={"page": page, "self": url_for("api.get_transaction", public_id=t.public_id)})


def _group_progress(t):
    if t.threshold is None:
        return None
    return schemas.GroupProgress(
        name=t.group_name, threshold=t.threshold, approvals_needed=t.approvals_needed,
        members=[schemas.MemberAnswer(
            member=_person(a.user), not_asked=a.not_asked,
            answer=a.decision or ("not asked" if a.not_asked else "waiting"))
            for a in t.approvals])


def _person(user):
    return schemas.Person(id=user.id, email=user.email, name=user.name)


def _proofs(rows):
    """How each verified transaction was proved (passkey, password), by transaction id."""
    ids = [t.id for t in rows if t.status == "verified"]
    if not ids:
        return {}
    found = db.session.execute(select(Event.transaction_id, Event.data).where(
        Event.kind == kinds.TRANSACTION_VERIFIED, Event.transaction_id.in_(ids))).all()
    return {tid: data.get("proof") for tid, data in found
            if (data or {}).get("proof") in ("passkey", "password")}


def _addressee(body):
    """(the user's email or None, the approval group or None, the routing rule in words or
    None) for a new request."""
    if sum(x is not None for x in (body.user, body.tags, body.group)) != 1:
        raise field_problem("Give one of `user` (who must prove who they are), `group` (an "
                            "approval group whose members approve) or `tags` (the routing "
                            "rules pick): not both, and not none.", "user")
    if body.tags is not None:
        try:
            rule = tag_rules.match(body.tags)
        except (tag_rules.NoRuleMatches, tag_rules.RuleError) as exc:
            raise field_problem(str(exc), "tags") from None
        return (rule.user.email if rule.user else None), rule.group, tag_rules.describe(rule)
    if body.group is not None:
        group = groups.find_by_name(body.group)
        if group is None:
            raise field_problem(f"There is no approval group named {body.group!r}. Check the "
                                "name (an admin sees them under Settings → Approval groups).",
                                "group")
        return None, group, None
    if isinstance(body.user, int):
        user = db.session.get(User, body.user) if body.user < 2 ** 31 else None
        return (user.email if user is not None else f"#{body.user}"), None, None
    return body.user, None, None


def _visible(key, public_id):
    transaction = transactions.find_visible(key.user, public_id)
    if transaction is None:
        raise Problem(404, NOT_FOUND)
    return transaction


@operation(bp, "POST", "/v1/transactions", tag=TAG, scope="transactions:write",
           body=schemas.NewTransaction, summary="Send an authentication request",
           responses={201: (schemas.Transaction, "Sent: with the code to read to the user")})
def create_transaction(key, body):
    """The same rules as the send form. No channel can reach the user: 422, with each
    channel's reason in `channels`. Too many requests by you or to the user: 429 with
    Retry-After. The answer's `code` is the call-binding code, given only here and to this
    key. With `tags` instead of `user`, the first routing rule that matches picks the user
    (the timeline names the rule); none matches: 422 saying so. With `group`, every member
    is asked with their own link (no code); when fewer can be asked than must approve, 422
    with each one's reason. A `payload` over 8 KB: 422."""
    email, group, routed_by = _addressee(body)
    common = dict(requestor=key.user, message=body.message, context=body.context,
                  ticket=body.ticket.model_dump() if body.ticket else None, api_key=key,
                  routed_by=routed_by, payload=body.payload)
    try:
        transaction = (group_requests.create(group=group, **common) if group is not None
                       else transactions.create(user_email=email, **common))
        db.session.flush()
        answer = transaction_out(transaction, key, proofs={})
        db.session.commit()
    except transactions.SendLimitReached as exc:
        db.session.rollback()
        raise Problem(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except transactions.Unreachable as exc:
        db.session.rollback()
        raise field_problem(str(exc), "user", channels=exc.reasons) from None
    except transactions.TransactionError as exc:
        db.session.rollback()
        raise field_problem(str(exc), exc.field) from None
    return 201, answer, {"Location": answer.links["self"]}


@operation(bp, "GET", "/v1/transactions/<public_id>", tag=TAG, scope="transactions:read",
           query=schemas.Wait, summary="Read a transaction, or wait for its answer",
           responses={200: (schemas.Transaction, "The transaction")})
def get_transaction(key, public_id, query):
    """Status, times, how the user answered, risk signals, each channel's delivery and the
    PagerDuty incident. With `?wait=N` (at most 60) a pending transaction is answered as soon
    as its status changes, or after N seconds."""
    transaction = _visible(key, public_id)
    seconds = min(query.wait, current_app.config["API_MAX_WAIT_SECONDS"])
    if seconds > 0:
        waiting.until_answered(transaction, seconds)
        # The key may have ended, or its owner been demoted, while it waited.
        db.session.refresh(key.user)
        db.session.refresh(key)
        auth.still_allowed(key, "transactions:read")
    return 200, transaction_out(transaction, key), None


@operation(bp, "GET", "/v1/transactions", tag=TAG, scope="transactions:read",
           query=schemas.TransactionFilters, summary="List transactions, newest first",
           responses={200: (schemas.TransactionList, "A page, and the cursor to the next")})
def list_transactions(key, query):
    """Requestors see the ones they sent; reviewers and admins every one. Pass `next_cursor`
    as `cursor` for the next page."""
    filters = transaction_list.Filters(
        status=query.status or "", user=query.user or "", ticket=query.ticket or "",
        requestor=(query.requestor or "") if key.user.has_role("reviewer") else "",
        since=query.since, until=query.until)
    statement = transaction_list.matching(key.user, filters)
    if query.cursor:
        # A cursor past any row id reads from the newest (PostgreSQL's ids are 32 bits).
        statement = statement.where(Transaction.id < min(int(query.cursor), MAX_ROW_ID))
    rows = db.session.scalars(statement.order_by(Transaction.id.desc())
                              .options(selectinload(Transaction.deliveries))
                              .limit(query.limit + 1)).unique().all()
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    proofs = _proofs(rows)
    return 200, schemas.TransactionList(
        items=[transaction_out(t, key, proofs) for t in rows],
        next_cursor=str(rows[-1].id) if more else None), None


@operation(bp, "POST", "/v1/transactions/<public_id>/cancel", tag=TAG,
           scope="transactions:write", summary="Cancel a pending transaction",
           responses={200: (schemas.Transaction, "Cancelled")})
def cancel_transaction(key, public_id):
    """By its requestor or an admin. One that is no longer pending: 409."""
    transaction = _visible(key, public_id)
    if not transactions.may_cancel(transaction, key.user):
        raise Problem(403, "Only the transaction's requestor or an admin may cancel it.")
    outcome = transactions.cancel(transaction, actor=key.user)
    db.session.commit()
    if not outcome.changed:
        raise Problem(409, f"The transaction is already {outcome.status}; only a pending one "
                           "can be cancelled.")
    return 200, transaction_out(transaction, key), None


@operation(bp, "GET", "/v1/transactions/<public_id>/events", tag=TAG,
           scope="transactions:read", query=schemas.Page, summary="A transaction's timeline",
           responses={200: (schemas.EventList, "Its events, oldest first")})
def transaction_events(key, public_id, query):
    transaction = _visible(key, public_id)
    statement = select(Event).where(Event.transaction_id == transaction.id)
    if query.cursor:
        statement = statement.where(Event.id > int(query.cursor))
    rows = db.session.scalars(statement.order_by(Event.id).limit(query.limit + 1)).all()
    return 200, event_list(rows, query.limit), None


def event_list(rows, limit):
    """A page of events in words (the timeline's and the audit log's), and the next cursor."""
    shown = rows[:limit]
    return schemas.EventList(items=[schemas.Event(
        id=e.id, kind=e.kind, at=e.created_at, actor=e.actor.name if e.actor else None,
        text=describe(e.kind, e.data or {}, e.actor.name if e.actor else None),
        data=e.data or {}) for e in shown],
        next_cursor=str(shown[-1].id) if len(rows) > limit else None)
