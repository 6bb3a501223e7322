"""Events in words: one line per event kind, the same on the timeline, in the audit log, in a
live stream's message and in the API (``WORDS``); a kind with no line of its own is named from
its code. Times the words name are marked so each page shows them in its reader's zone."""
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ... import channels
from ...core import event_kinds as kinds
from ..requests import delivery_report


def describe(kind, data, actor_name=None):
    """One line for an event: a transaction's timeline (the same on the page and in the live
    stream) or the audit log; its times in UTC. A kind with no words is named in words made
    from its name ("user.enrolment_link_issued": "Enrolment link issued"), never as a code."""
    return "".join(part if isinstance(part, str) else part.text
                   for part in describe_parts(kind, data, actor_name))


@dataclass(frozen=True)
class Moment:
    """A time an event's words name: ``at`` (aware, or None when unreadable) and ``text``,
    its words in UTC. A page shows it in the reader's zone (pages/formatting.py)."""

    at: datetime | None
    text: str


def describe_parts(kind, data, actor_name=None):
    """The words of ``describe``, as text and the ``Moment`` of each time they name."""
    words = WORDS.get(kind)
    who = actor_name or VIA.get((data or {}).get("via")) or "Someone"
    line = words(Told(who, data)) if words else kind_words(kind)
    parts = _MOMENT.split(line)
    return [part if n % 3 == 0 else Moment(_parsed(part), parts[n + 1])
            for n, part in enumerate(parts) if n % 3 != 2]


def kind_words(kind):
    """A kind's name in words: "user.enrolment_link_issued" is "Enrolment link issued", and
    "approval_group.created" (one word after the dot) "Approval group created"."""
    subject, _, what = kind.rpartition(".")
    words = what if "_" in what or not subject else f"{subject} {what}"
    words = words.replace("_", " ").strip() or kind
    return words[:1].upper() + words[1:]


# Where words name a time: ``\ue000<ISO 8601>\ue001<the time in UTC>\ue002`` (private-use
# characters, never in what people type into a form field that ends up here as a time).
_MOMENT = re.compile("\ue000([^\ue001\ue002]*)\ue001([^\ue000\ue002]*)\ue002")


def _moment(iso, text):
    return f"\ue000{iso}\ue001{text}\ue002"


def _parsed(iso):
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


# Who made a change no person made, by the ``via`` of its data.
VIA = {"scim": "The identity provider (SCIM)"}


@dataclass(frozen=True)
class Told:
    """What an event's words are made of: who did it (``who``) and its data (``told["x"]``
    is ``data.get("x")``)."""

    who: str
    data: dict

    def __getitem__(self, key):
        return self.data.get(key)

    @property
    def channel(self):
        return channels.label(self["channel"])

    @property
    def attempt(self):
        return f"attempt {self['attempt']}" if self["attempt"] else ""

    @property
    def changes(self):
        return "; ".join(str(c) for c in self["changes"] or [])

    @property
    def resolving(self):
        """A delivery that resolves PagerDuty's incident rather than notifying the user."""
        return self["action"] == "resolve"

    def error_tail(self):
        """``: <the error>`` when there is one."""
        return f": {self['error']}" if self["error"] else ""


PROOF_WORDS = {"passkey": "with a passkey", "password": "by entering their password again"}


def _created(t):
    via = ", ".join(channels.label(c) for c in t["channels"] or [])
    how = [f"with the API key {t['api_key']}"] if t["api_key"] else []
    how += [f"for ticket {t['ticket']}"] if t["ticket"] else []
    how += [f"routed by the rule {t['routed_by']}"] if t["routed_by"] else []
    if t["group"]:
        how += [f"not asked: {', '.join(f'{n} ({why})' for n, why in t['not_asked'].items())}"
                ] if t["not_asked"] else []
        return (f"{t.who} sent the request to {t['group']}: {t['threshold']} of "
                f"{len(t['asked'] or [])} asked must approve" + (f", through {via}" if via else "")
                + (f" ({', '.join(how)})" if how else ""))
    return f"{t.who} sent the request" + (f" through {via}" if via else "") + \
        (f" ({', '.join(how)})" if how else "")


def _verified(t):
    if t["group"]:
        return f"Verified: {t.who} gave the last approval {t['group']} needed"
    how = PROOF_WORDS.get(t["proof"])
    return f"{t.who} verified it" + (f" {how}" if how else "")


def _approved(t):
    needed = t["approvals_needed"]
    left = ("the last approval needed" if not needed else
            f"{needed} more approval{'s' if needed != 1 else ''} needed")
    return f"{t.who} approved it for {t['group']}: {left}"


def _denied(t):
    if t["group"]:
        return f"Denied: {t.who} of {t['group']} denied it"
    if t["reason"] == "wrong_code":
        return f"Denied: {t.who} entered a wrong code"
    return f"{t.who} denied it"


def _passkey_used(t):
    used = f"{t.who} proved it is them with the passkey {t['name']!r}"
    if t["new"]:
        used += (f", registered less than a day before ({_when(t['registered_at'])}): ask "
                 "them whether they added it")
    return used


def _delivery_sent(t):
    if t.resolving:
        return f"{t.channel} accepted the resolve of the incident ({t.attempt}, HTTP " \
               f"{t['http_status']})"
    return delivery_report.accepted_words(t["channel"], t["http_status"], t["attempt"])


def _delivery_retrying(t):
    doing = "resolving the incident, " if t.resolving else ""
    return (f"{t.channel}: {doing}{t.attempt} failed ({t['error']}); trying again at "
            f"{_clock(t['next_attempt_at'])}")


def _delivery_failed(t):
    if t.resolving:
        return f"{t.channel}: resolving the incident failed: {t['error']}"
    return f"{t.channel}: the notification failed: {t['error']}"


def _delivery_cancelled(t):
    if t.resolving:
        return f"{t.channel}: the incident was not resolved: {t['reason']}"
    return f"{t.channel}: not sent: {t['reason']}"


def _to_member(words):
    """A delivery's words, naming the group member it went to when it was to one."""
    return lambda t: f"To {t['member']}: {words(t)}" if t["member"] else words(t)


def _resolve_requested(t):
    if t["automatic"]:
        return "Asked PagerDuty to resolve the incident: the request is final"
    return f"{t.who} asked PagerDuty to resolve the incident"


# PagerDuty's incident events: what happened, to whom, by whom ("Acknowledged in PagerDuty by
# Alex Oncall"), and what follows.
INCIDENT_WORDS = {
    kinds.PAGERDUTY_TRIGGERED: ("Incident opened in PagerDuty", ""),
    kinds.PAGERDUTY_ACKNOWLEDGED: ("Acknowledged in PagerDuty", ""),
    kinds.PAGERDUTY_UNACKNOWLEDGED: ("Unacknowledged in PagerDuty", ": nobody holds it now"),
    kinds.PAGERDUTY_REASSIGNED: ("Reassigned in PagerDuty", ""),
    kinds.PAGERDUTY_ESCALATED: ("Escalated in PagerDuty", ""),
    kinds.PAGERDUTY_RESOLVED: ("Resolved in PagerDuty", ""),
    kinds.PAGERDUTY_REOPENED: ("Reopened in PagerDuty", ""),
    kinds.PAGERDUTY_ANNOTATED: ("Note added in PagerDuty", ""),
}


def _incident(kind):
    def words(t):
        said, after = INCIDENT_WORDS[kind]
        if t["assignees"]:
            said += f" to {', '.join(t['assignees'])}"
        if t["agent"]:
            said += f" by {t['agent']}"
        if t["note"]:
            after = f": {t['note']}"
        return said + after

    return words


def _enrolment_link_issued(t):
    what = "an invitation" if t["kind"] == "invitation" else "a passkey enrolment link"
    return f"{t.who} issued {what} for {t['email']}" + \
        (", which resets their passkeys" if t["reset"] else "")


def _enrolled(t):
    through = "their invitation" if t["kind"] == "invitation" else "an enrolment link"
    return f"{t.who} registered the passkey {t['passkey']!r} through {through}" + \
        ("; their other passkeys were removed" if t["reset"] else "")


def _settings_changed(label):
    return lambda t: f"{t.who} changed the {label} settings: {t.changes}"


def _settings_tested(label, did):
    def words(t):
        unsaved = " with settings not saved" if t["unsaved"] else ""
        line = f"{t.who} {did} through {label}{unsaved}: {t['outcome'] or 'sent'}"
        if t["http_status"]:
            line += f" (HTTP {t['http_status']})"
        return line + t.error_tail()

    return words


# Each kind's words (CTFd's DECAY_FUNCTIONS: a table, not a chain of ifs).
WORDS = {
    kinds.TRANSACTION_CREATED: _created,
    kinds.TRANSACTION_VERIFIED: _verified,
    kinds.TRANSACTION_DENIED: _denied,
    kinds.TRANSACTION_CANCELLED: lambda t: f"{t.who} cancelled the request" + (
        f": {t['reason']}" if t["reason"] else ""),
    kinds.TRANSACTION_EXPIRED: lambda t: "Expired without an answer",
    kinds.APPROVAL_VERIFIED: _approved,
    kinds.APPROVAL_DENIED: lambda t: f"{t.who} denied it for {t['group']}",
    kinds.APPROVAL_GROUP_CREATED: lambda t: (f"{t.who} added the approval group "
                                             f"{t['group']!r}: {t.changes}"),
    kinds.APPROVAL_GROUP_CHANGED: lambda t: (f"{t.who} changed the approval group "
                                             f"{t['group']!r}: {t.changes}"),
    kinds.APPROVAL_GROUP_DELETED: lambda t: (f"{t.who} deleted the approval group "
                                             f"{t['group']!r} ({t.changes})"),
    kinds.VERIFICATION_REFUSED: lambda t: f"{t.who} could not verify: {t['reason']}",
    kinds.PASSKEY_USED: _passkey_used,
    kinds.BINDING_WRONG_PICK: lambda t: (f"{t.who} picked a wrong code, {t['picked']} "
                                         f"({t['picks']} of {t['limit']} allowed)"),
    **{kind: _to_member(words) for kind, words in (
        (kinds.DELIVERY_SENT, _delivery_sent), (kinds.DELIVERY_RETRYING, _delivery_retrying),
        (kinds.DELIVERY_FAILED, _delivery_failed),
        (kinds.DELIVERY_CANCELLED, _delivery_cancelled))},
    **{kind: _incident(kind) for kind in INCIDENT_WORDS},
    kinds.PAGERDUTY_RESOLVE_REQUESTED: _resolve_requested,
    kinds.USER_CREATED: lambda t: f"{t.who} created the account {t['email']} as {t['role']}",
    kinds.USER_ROLE_CHANGED: lambda t: (f"{t.who} changed the role of {t['email']} from "
                                        f"{t['from']} to {t['to']}"),
    kinds.USER_DEACTIVATED: lambda t: f"{t.who} deactivated {t['email']}",
    kinds.API_KEY_CREATED: lambda t: (f"{t.who} created the API key {t['name']} "
                                      f"({t['prefix']}…) of {t['email']} with "
                                      f"{', '.join(t['scopes'] or [])}, until "
                                      f"{_when(t['expires_at'])}"),
    kinds.API_KEY_REVOKED: lambda t: (f"{t.who} revoked the API key {t['name']} "
                                      f"({t['prefix']}…) of {t['email']}"),
    kinds.USER_REACTIVATED: lambda t: f"{t.who} reactivated {t['email']}",
    kinds.USER_PASSWORD_CHANGED: lambda t: f"{t.who} set a new password for {t['email']}",
    kinds.USER_PASSWORD_SET: lambda t: (f"An operator set a new password for {t['email']} "
                                        "(ensure-admin)"),
    kinds.USER_ENROLMENT_LINK_ISSUED: _enrolment_link_issued,
    kinds.USER_ENROLLED: _enrolled,
    kinds.USER_SIGNED_IN: lambda t: f"{t.who} signed in with {t['method']}",
    kinds.PASSKEY_REGISTERED: lambda t: f"{t.who} registered the passkey {t['name']!r}",
    kinds.PASSKEY_REMOVED: lambda t: f"{t.who} removed the passkey {t['name']!r}",
    kinds.PROFILE_MESSAGING_CHANGED: lambda t: (f"{t.who} changed their messaging "
                                                f"preferences: {t.changes}"),
    kinds.PROFILE_CHANGE_ANNOUNCED: lambda t: (f"Telling {t.who} of the change through "
                                               f"{t.channel}: {t['outcome']}{t.error_tail()}"),
    kinds.WEBHOOK_ENDPOINT_CREATED: lambda t: f"{t.who} added the webhook endpoint {t['url']}",
    kinds.WEBHOOK_ENDPOINT_CHANGED: lambda t: (f"{t.who} changed the webhook endpoint "
                                               f"{t['url']}: {t.changes}"),
    kinds.WEBHOOK_SECRET_ROTATED: lambda t: (f"{t.who} rotated the secret of the webhook "
                                             f"endpoint {t['url']}; the old one signs until "
                                             f"{_when(t['old_until'])}"),
    kinds.WEBHOOK_ENDPOINT_DELETED: lambda t: f"{t.who} deleted the webhook endpoint {t['url']}",
    kinds.WEBHOOK_ENDPOINT_DISABLED: lambda t: (f"The webhook endpoint {t['url']} was turned "
                                                f"off: {t['reason']}"),
    kinds.SCIM_TOKEN_ISSUED: lambda t: (f"{t.who} issued a new SCIM token ({t['prefix']}…); "
                                        "the one before stopped working"),
    kinds.SCIM_TOKEN_REVOKED: lambda t: (f"{t.who} revoked the SCIM token ({t['prefix']}…): "
                                         "the identity provider can no longer provision"),
    kinds.SCIM_GROUP_ROLE_CHANGED: lambda t: (f"{t.who} made the group {t['group']!r} give "
                                              f"{t['to'] or 'no role'} (was "
                                              f"{t['from'] or 'no role'})"),
    kinds.SETTINGS_ORGANISATION_CHANGED: lambda t: (f"{t.who} changed the organisation's "
                                                    f"rules: {t.changes}"),
    kinds.SETTINGS_MESSAGES_CHANGED: lambda t: (f"{t.who} changed the organisation's "
                                                f"messages: {t.changes}"),
    kinds.SETTINGS_ROUTING_CHANGED: lambda t: f"{t.who} changed the routing rules: {t.changes}",
    kinds.SETTINGS_SIGN_IN_CHANGED: lambda t: (f"{t.who} changed single sign-on: "
                                               f"{t.changes}"),
    kinds.USER_SIGN_ON_LINKED: lambda t: (
        f"{t['email']} signed in through the identity provider for the first time"
        + ("; the account was created" if t["created"] else "; linked to the existing account")),
    **{kind: words for name in channels.names() for kind, words in zip(
        kinds.of_channel(name),
        (_settings_changed(channels.label(name)),
         _settings_tested(channels.label(name), "sent a test"),
         _settings_tested(channels.label(name), "resolved a test")), strict=True)},
}


def incident_link_text(data):
    """"incident #12": the words of the link to PagerDuty's incident beside an event."""
    return f"incident #{data['number']}" if data.get("number") else "the incident"


def _when(iso):
    return _moment(iso, f"{iso[:10]} {iso[11:16]} UTC") if iso else "a recent time"


def _clock(iso):
    return _moment(iso, iso[11:19] + " UTC") if iso else "a later time"
