"""What a webhook says: its ``webhook-id`` and its payload, ``{"type", "timestamp", "data"}``.

The data is the API's representation of a transaction or a user (ids, status, user, requestor,
ticket, who answered and how, risk signals), under 20 KB. It never holds the call-binding
code, an answer link or any token: the fields are picked here, one by one.
"""
import json
import secrets as random_secrets

from ...core import event_kinds as kinds
from ...models import utcnow
from ..requests import risks

PAYLOAD_MAX_BYTES = 20_000


def new_msg_id():
    """The ``webhook-id``: the same on every retry and replay, so receivers deduplicate."""
    return "msg_" + random_secrets.token_urlsafe(18)


def transaction_data(transaction, event=None):
    """A transaction as a webhook tells it (the API's fields; no code, link or token)."""
    t = transaction
    data = {
        "id": t.public_id, "status": t.status_at(utcnow()), "message": t.message,
        "context": t.context or "", "user": person(t.user), "requestor": person(t.requestor),
        "created_at": _iso(t.created_at), "expires_at": _iso(t.expires_at),
        "completed_at": _iso(t.completed_at),
        "ticket": None if not (t.ticket_system or t.ticket_id or t.ticket_url) else
        {"system": t.ticket_system, "id": t.ticket_id, "url": t.ticket_url},
        "risks": risks.words(t.risks, t.user.name),
    }
    if t.threshold is not None:
        data["group"] = {"name": t.group_name, "threshold": t.threshold,
                         "approvals_needed": t.approvals_needed,
                         "approved_by": [person(a.user) for a in t.approvals
                                         if a.decision == "verified"]}
    if t.payload is not None:
        data["payload"] = t.payload
    if event is not None and event.kind in (kinds.TRANSACTION_VERIFIED, kinds.TRANSACTION_DENIED):
        data["answered_by"] = person(event.actor) if event.actor else None
        data["answered_how"] = (event.data or {}).get("proof")
    return data


def person(user):
    return {"id": user.id, "email": user.email, "name": user.name}


def user_data(user, event):
    data = {**person(user), "role": user.role, "active": user.active}
    details = event.data or {}
    if event.kind in (kinds.PASSKEY_REGISTERED, kinds.PASSKEY_REMOVED, kinds.USER_ENROLLED):
        data["passkey"] = details.get("name") or details.get("passkey")
    if event.kind == kinds.PROFILE_MESSAGING_CHANGED:
        data["changes"] = [str(c) for c in details.get("changes") or []]
    return data


def payload(event_type, data, at=None):
    """The body as sent: compact JSON, cut to fit 20 KB (the message and context first)."""
    document = {"type": event_type, "timestamp": _iso(at or utcnow()), "data": data}
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    if len(body.encode()) > PAYLOAD_MAX_BYTES and "message" in data:
        document["data"] = {**data, "message": data["message"][:200],
                            "context": data["context"][:200], "truncated": True}
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return body


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def message_row(endpoint_id, event_type, body):
    now = utcnow()
    return {"endpoint_id": endpoint_id, "msg_id": new_msg_id(), "event_type": event_type,
            "payload": body, "status": "queued", "attempts": 0, "created_at": now,
            "next_attempt_at": now}
