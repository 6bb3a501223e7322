"""Events in words and as the JSON a live stream sends: the same on a page and in a stream."""
from ... import channels
from ..requests import delivery_report, risks


def message_for(event, transaction=None, actor=None):
    """The JSON-ready form of an event, as streams and pages see it.

    Transaction events carry a summary of the transaction (who, what, its state as of this
    event) and the ids that decide who may see it; they never carry a secret or a token.
    """
    transaction = transaction if transaction is not None else event.transaction
    actor = actor if actor is not None else event.actor
    actor_name = actor.name if actor is not None else None
    message = {
        "id": event.id,
        "kind": event.kind,
        "at": event.created_at.isoformat(),
        "actor": actor_name,
        "text": describe(event.kind, event.data or {}, actor_name),
        "data": event.data or {},
    }
    if transaction is not None:
        message["transaction"] = {
            "id": transaction.public_id,
            "status": (event.data or {}).get("status", transaction.status),
            "requestor": transaction.requestor.name,
            "requestor_email": transaction.requestor.email,
            "requestor_id": transaction.requestor_id,
            "user": transaction.user.name,
            "user_email": transaction.user.email,
            "user_id": transaction.user_id,
            "message": transaction.message,
            "created_at": transaction.created_at.isoformat(),
            "expires_at": transaction.expires_at.isoformat(),
            "risks": risks.words((event.data or {}).get("risks", transaction.risks),
                                 transaction.user.name),
        }
        row = delivery_report.row_from_event(event.kind, event.data or {}, event.created_at,
                                             transaction.created_at)
        if row is not None:
            message["delivery"] = row.as_message()
    return message


PROOF_WORDS = {"passkey": "with a passkey", "password": "by entering their password again"}


def describe(kind, data, actor_name=None):
    """One line for an event: a transaction's timeline (the same on the page and in the live
    stream) or the audit log."""
    who = actor_name or "Someone"
    channel = channels.label(data.get("channel"))
    attempt = f"attempt {data['attempt']}" if data.get("attempt") else ""
    # Events about no one transaction: accounts and settings (the audit log).
    changes = "; ".join(str(c) for c in data.get("changes") or [])
    if kind == "user.created":
        return f"{who} created the account {data.get('email')} as {data.get('role')}"
    if kind == "user.role_changed":
        return (f"{who} changed the role of {data.get('email')} from {data.get('from')} "
                f"to {data.get('to')}")
    if kind == "user.deactivated":
        return f"{who} deactivated {data.get('email')}"
    if kind == "user.reactivated":
        return f"{who} reactivated {data.get('email')}"
    if kind == "user.password_changed":
        return f"{who} set a new password for {data.get('email')}"
    if kind == "user.password_set":
        return f"An operator set a new password for {data.get('email')} (ensure-admin)"
    if kind == "settings.organisation_changed":
        return f"{who} changed the organisation's rules: {changes}"
    if kind == "profile.messaging_changed":
        return f"{who} changed their messaging preferences: {changes}"
    if kind.startswith("settings.") and kind.endswith("_changed"):
        label = channels.label(kind[len("settings."):-len("_changed")])
        return f"{who} changed the {label} settings: {changes}"
    if kind.startswith("settings.") and kind.endswith("_tested"):
        label = channels.label(kind[len("settings."):-len("_tested")])
        outcome = data.get("outcome") or "sent"
        line = f"{who} sent a test through {label}: {outcome}"
        if data.get("http_status"):
            line += f" (HTTP {data['http_status']})"
        if data.get("error"):
            line += f": {data['error']}"
        return line
    if kind == "transaction.created":
        via = ", ".join(channels.label(c) for c in data.get("channels", []))
        return f"{who} sent the request" + (f" through {via}" if via else "")
    if kind == "transaction.verified":
        how = PROOF_WORDS.get(data.get("proof"))
        return f"{who} verified it" + (f" {how}" if how else "")
    if kind == "transaction.denied":
        if data.get("reason") == "wrong_code":
            return f"Denied: {who} entered a wrong code"
        return f"{who} denied it"
    if kind == "binding.wrong_pick":
        return (f"{who} picked a wrong code, {data.get('picked')} "
                f"({data.get('picks')} of {data.get('limit')} allowed)")
    if kind == "passkey.used":
        used = f"{who} proved it is them with the passkey {data.get('name')!r}"
        if data.get("new"):
            used += (f", registered less than a day before ({_when(data.get('registered_at'))}):"
                     " ask them whether they added it")
        return used
    if kind == "passkey.registered":
        return f"{who} registered the passkey {data.get('name')!r}"
    if kind == "passkey.removed":
        return f"{who} removed the passkey {data.get('name')!r}"
    if kind == "verification.refused":
        return f"{who} could not verify: {data.get('reason')}"
    if kind == "transaction.cancelled":
        return f"{who} cancelled the request"
    if kind == "transaction.expired":
        return "Expired without an answer"
    if data.get("action") == "resolve" and kind.startswith("delivery."):
        return _resolve_delivery(kind, data, channel, attempt)
    if kind.startswith("pagerduty."):
        return _incident(kind, data, who)
    if kind == "delivery.sent":
        return delivery_report.accepted_words(data.get("channel"), data.get("http_status"),
                                              data.get("attempt"))
    if kind == "delivery.retrying":
        return (f"{channel}: {attempt} failed ({data.get('error')}); trying again at "
                f"{_clock(data.get('next_attempt_at'))}")
    if kind == "delivery.failed":
        return f"{channel}: the notification failed: {data.get('error')}"
    if kind == "delivery.cancelled":
        return f"{channel}: not sent: {data.get('reason')}"
    return kind


def _resolve_delivery(kind, data, channel, attempt):
    if kind == "delivery.sent":
        return f"{channel} accepted the resolve of the incident ({attempt}, HTTP " \
               f"{data.get('http_status')})"
    if kind == "delivery.retrying":
        return (f"{channel}: resolving the incident, {attempt} failed ({data.get('error')}); "
                f"trying again at {_clock(data.get('next_attempt_at'))}")
    if kind == "delivery.failed":
        return f"{channel}: resolving the incident failed: {data.get('error')}"
    return f"{channel}: the incident was not resolved: {data.get('reason')}"


# PagerDuty's incident events: what happened, to whom, by whom ("Acknowledged in PagerDuty by
# Alex Oncall"), and what follows.
INCIDENT_WORDS = {
    "pagerduty.triggered": ("Incident opened in PagerDuty", ""),
    "pagerduty.acknowledged": ("Acknowledged in PagerDuty", ""),
    "pagerduty.unacknowledged": ("Unacknowledged in PagerDuty", ": nobody holds it now"),
    "pagerduty.reassigned": ("Reassigned in PagerDuty", ""),
    "pagerduty.escalated": ("Escalated in PagerDuty", ""),
    "pagerduty.resolved": ("Resolved in PagerDuty", ""),
    "pagerduty.reopened": ("Reopened in PagerDuty", ""),
    "pagerduty.annotated": ("Note added in PagerDuty", ""),
}


def _incident(kind, data, who):
    if kind == "pagerduty.resolve_requested":
        if data.get("automatic"):
            return "Asked PagerDuty to resolve the incident: the request is final"
        return f"{who} asked PagerDuty to resolve the incident"
    if kind not in INCIDENT_WORDS:
        return kind
    words, after = INCIDENT_WORDS[kind]
    if data.get("assignees"):
        words += f" to {', '.join(data['assignees'])}"
    if data.get("agent"):
        words += f" by {data['agent']}"
    if data.get("note"):
        after = f": {data['note']}"
    return words + after


def incident_link_text(data):
    """"incident #12": the words of the link to PagerDuty's incident beside an event."""
    return f"incident #{data['number']}" if data.get("number") else "the incident"


def _when(iso):
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else "a recent time"


def _clock(iso):
    return iso[11:19] + " UTC" if iso else "a later time"
