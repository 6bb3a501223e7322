"""The organisation's own words for a request's notification (Settings → Messages): the email's
subject and body, the SMS body and the Slack text, each a template with placeholders.

A template is plain text. ``{user}`` is replaced by the request's value; ``{{`` and ``}}``
stand for a brace. Values go in as text, never as markup: the email's HTML escapes them,
Slack shows them as typed (never as mrkdwn), a subject is one line whatever they hold. A line
whose every placeholder is empty is left out, so "Context: {context}" disappears from a
request that has none. A template left empty (or never saved) means SendAuth's own message,
which each channel writes itself.
"""
import string
from dataclasses import dataclass
from datetime import timedelta

from ..core.text import control_character
from ..core.tokens import new_token
from ..extensions import db
from ..models import MessageTemplates, utcnow

# Each placeholder and what it is replaced by, in the order the settings page lists them.
PLACEHOLDERS = {
    "requestor": "the requestor's name",
    "user": "the name of the person asked",
    "message": "the requestor's message",
    "context": "the context, when there is one",
    "link": "the single-use link to verify or deny",
    "expires": "when the link expires (UTC)",
    "group": "the approval group's name (group requests; empty otherwise)",
    "approvals_needed": "how many more approvals are needed (group requests; empty otherwise)",
}
EXPIRES_FORMAT = "%Y-%m-%d %H:%M UTC"


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    max_chars: int
    needs_link: bool
    one_line: bool
    # SendAuth's own message, written as a template: what the page shows before any change.
    default: str


FIELDS = {field.name: field for field in (
    Field("email_subject", "Email subject", 200, False, True,
          "Authentication request from {requestor}"),
    Field("email_body", "Email body", 2000, True, False,
          "{requestor} asks you to confirm that it is really you.\n\nMessage: {message}\n"
          "Context: {context}\n\nVerify or deny:\n{link}\n\nThe link works once and expires "
          "at {expires}. If you did not expect this request, choose deny."),
    Field("sms_body", "SMS body", 500, True, False,
          "SendAuth: {requestor} asks you to authenticate.\nMessage: {message}\n"
          "Context: {context}\nVerify or deny: {link}"),
    Field("slack_text", "Slack text", 1000, True, False,
          "Authentication request from {requestor}\nMessage: {message}\nContext: {context}\n"
          "Verify or deny: {link}"),
)}


# A group request's words when the organisation has none of its own: each member is asked to
# approve, not to prove who they are.
GROUP_DEFAULTS = {
    "email_subject": "Approval requested by {requestor} from {group}",
    "email_body": "{requestor} asks {group} to approve a request; {approvals_needed} more "
                  "approvals are needed.\n\nMessage: {message}\nContext: {context}\n\n"
                  "Approve or deny with your passkey:\n{link}\n\nThe link is yours alone, "
                  "works once and expires at {expires}.",
    "sms_body": "SendAuth: {requestor} asks {group} to approve.\nMessage: {message}\n"
                "Context: {context}\nApprove or deny: {link}",
    "slack_text": "Approval requested by {requestor} from {group} ({approvals_needed} more "
                  "needed)\nMessage: {message}\nContext: {context}\nApprove or deny: {link}",
}


class TemplateError(ValueError):
    """A template that cannot be used; the message says what to change."""


def known_list():
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def parse(text):
    """The template's pieces: (literal text, placeholder name or None), in order."""
    pieces = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise TemplateError("A brace is on its own: a placeholder is a name between { and }, "
                            "such as {link}; write {{ or }} for a brace itself.") from None
    for literal, name, spec, conversion in parsed:
        pieces.append((literal, None))
        if name is None:
            continue
        if spec or conversion or name not in PLACEHOLDERS:
            written = name + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else "")
            raise TemplateError(f"{{{written}}} is not a placeholder. The known ones are "
                                f"{known_list()}; write {{{{ or }}}} for a brace itself.")
        pieces.append(("", name))
    return [(literal, name) for literal, name in pieces if literal or name]


def check(field_name, text):
    """``text`` as it will be kept (line breaks as \\n), or TemplateError saying what to fix."""
    field = FIELDS[field_name]
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise TemplateError(f"The {field.label.lower()} is empty: write one, or choose "
                            "\"Back to the default\".")
    if len(text) > field.max_chars:
        raise TemplateError(f"The {field.label.lower()} must be at most {field.max_chars} "
                            f"characters; yours has {len(text)}.")
    bad = control_character(text, allowed="" if field.one_line else "\n\t")
    if bad:
        where = "write it on one line" if field.one_line else "only line breaks and tabs"
        raise TemplateError(f"The {field.label.lower()} contains {bad}: {where}.")
    names = {name for _, name in parse(text) if name}
    if field.needs_link and "link" not in names:
        raise TemplateError(f"The {field.label.lower()} must contain {{link}}: it is how the "
                            "person answers. Put {link} where the link should go.")
    return text


def custom(field_name):
    """The organisation's template for ``field_name``, or None for SendAuth's own message."""
    row = db.session.get(MessageTemplates, 1)
    return getattr(row, field_name) if row is not None else None


def for_request(field_name, transaction):
    """The template for ``transaction``'s message: the organisation's; else, for a group
    request, the group's default; else None (SendAuth's own message)."""
    template = custom(field_name)
    if template is None and getattr(transaction, "group_name", None):
        return GROUP_DEFAULTS[field_name]
    return template


def values_of(transaction, link):
    """What each placeholder is replaced by for ``transaction``."""
    return {"requestor": transaction.requestor.name, "user": transaction.user.name,
            "message": transaction.message, "context": transaction.context or "",
            "link": link, "expires": transaction.expires_at.strftime(EXPIRES_FORMAT),
            "group": getattr(transaction, "group_name", None) or "",
            "approvals_needed": str(transaction.approvals_needed)
            if getattr(transaction, "group_name", None) else ""}


def sample_values(base_url, ttl_seconds, now=None):
    """A sample request for the preview: its link as long as a real one."""
    expires = (now or utcnow()) + timedelta(seconds=ttl_seconds)
    return {"requestor": "Hal Helpdesk", "user": "Uma User",
            "message": "You called about resetting your VPN access. Is this you?",
            "context": "Ticket INC-1042", "link": f"{base_url}/authenticate/{new_token()[0]}",
            "expires": expires.strftime(EXPIRES_FORMAT), "group": "", "approvals_needed": ""}


def render(template, values):
    """The template filled in: a list of pieces, each ("text", words) or ("link", url)."""
    pieces = []
    for line in template.split("\n"):
        parsed = parse(line)
        names = [name for _, name in parsed if name]
        if names and not any(values.get(name) for name in names):
            continue
        for literal, name in parsed:
            if literal:
                pieces.append(("text", literal))
            if name == "link":
                pieces.append(("link", values["link"]))
            elif name:
                pieces.append(("text", str(values.get(name) or "")))
        pieces.append(("text", "\n"))
    return _joined(pieces)


def _joined(pieces):
    """Adjacent texts as one, empty ones gone, no line break at the end."""
    joined = []
    for kind, value in pieces:
        if kind == "text" and joined and joined[-1][0] == "text":
            joined[-1] = ("text", joined[-1][1] + value)
        elif value:
            joined.append((kind, value))
    if joined and joined[-1][0] == "text":
        joined[-1] = ("text", joined[-1][1].rstrip("\n"))
    return [piece for piece in joined if piece[1]]


def as_text(pieces):
    return "".join(value for _, value in pieces)


def one_line(text):
    """A subject: its whitespace (line breaks a message brought in, too) as single spaces."""
    return " ".join(text.split())
