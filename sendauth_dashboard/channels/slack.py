"""Slack direct messages through the Web API's ``chat.postMessage``.

The bot token (``xoxb-…``) goes in an ``Authorization: Bearer`` header; ``channel`` is the
user's member id, which posts in the app's direct messages with them. Slack answers HTTP
200 with ``{"ok": false, "error": "invalid_auth"}`` for most errors (``rate_limited`` among
them), and 429 with Retry-After and ``ratelimited`` when rate limited.

What a requestor typed is shown exactly as typed: mrkdwn has no escape for ``*``, ``_``,
``~`` or backticks, so the message is a ``rich_text`` block, whose text Slack never formats;
the heading is bold by the block's style. ``text`` is the short fallback Slack shows in
notifications, with ``&``, ``<`` and ``>`` escaped as Slack asks and no formatting of ours.
"""
import re
from dataclasses import dataclass, field

from ..models import SlackSettings
from . import message_templates
from .base import Channel, Contact, Page
from .http import (
    SendResult,
    WebApiClient,
    http_error_text,
    is_retryable_status,
    json_body,
    retry_after,
)
from .integration import Setting

_BOT_TOKEN_RE = re.compile(r"xoxb-[0-9A-Za-z-]{20,250}")
_MEMBER_ID_RE = re.compile(r"[UW][A-Z0-9]{6,20}")
# Errors that may pass on a later try; every other error is about the token, the app's
# scopes or the user, and needs a person to fix it.
RETRYABLE_ERRORS = {"ratelimited", "rate_limited", "internal_error", "fatal_error",
                    "service_unavailable", "request_timeout"}
# What a person can do about Slack's most common error codes.
ADVICE = {
    "not_authed": "no bot token was sent",
    "invalid_auth": "the bot token is not valid",
    "token_revoked": "the bot token was revoked",
    "account_inactive": "the bot token belongs to a deleted user or workspace",
    "channel_not_found": "no such member id in this workspace",
    "user_not_found": "no such member id in this workspace",
    "missing_scope": "the app needs the chat:write scope",
    "ratelimited": "Slack asks to slow down",
    "rate_limited": "Slack asks to slow down",
}


def clean_bot_token(raw):
    token = (raw or "").strip()
    if _BOT_TOKEN_RE.fullmatch(token):
        return token
    where = "Slack app settings → OAuth & Permissions → Bot User OAuth Token"
    if token.startswith(("xoxp-", "xoxe", "xapp-")):
        raise ValueError(f"That is not a bot token (it starts with {token[:5]}); paste the bot "
                         f"token, which starts with xoxb-. Find it under {where}.")
    raise ValueError(f"A bot token starts with xoxb- followed by letters, digits and hyphens, "
                     f"with no spaces. Copy it again from {where}.")


def clean_member_id(raw):
    """The member id, upper-cased, or None when left empty; ValueError says what is wrong."""
    member_id = (raw or "").strip().upper()
    if not member_id:
        return None
    if _MEMBER_ID_RE.fullmatch(member_id):
        return member_id
    raise ValueError("A Slack member id is U or W followed by capital letters and digits, like "
                     "U024BE7LH; it is not your display name. In Slack: your profile → ⋮ → "
                     "Copy member ID.")


@dataclass(frozen=True)
class DirectMessage:
    bot_token: str = field(repr=False)
    member_id: str
    # The notification's fallback text, and the message as Slack shows it.
    text: str
    blocks: tuple = ()


def escape(text):
    """Text for a mrkdwn field: no links, mentions or channel alerts injected."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _rich_text(*elements):
    """One rich_text block: its text elements are shown as written, never as mrkdwn."""
    return ({"type": "rich_text",
             "elements": [{"type": "rich_text_section", "elements": list(elements)}]},)


def _text(words, bold=False):
    return {"type": "text", "text": words, **({"style": {"bold": True}} if bold else {})}


def request_message(transaction, link, template=None):
    """The heading (bold), the message and context exactly as typed, and the link; or
    ``template``, the organisation's own text (Settings → Messages), shown as written, never
    as mrkdwn."""
    if template is not None:
        return templated_message(template, message_templates.values_of(transaction, link))
    heading = f"Authentication request from {transaction.requestor.name}"
    lines = [f"\nMessage: {transaction.message}"]
    if transaction.context:
        lines.append(f"\nContext: {transaction.context}")
    blocks = _rich_text(_text(heading, bold=True), _text("".join(lines)),
                        _text("\nVerify or deny: "), {"type": "link", "url": link})
    return escape(heading), blocks


def templated_message(template, values):
    pieces = message_templates.render(template, values)
    elements = [{"type": "link", "url": value} if kind == "link" else _text(value)
                for kind, value in pieces]
    return escape(message_templates.as_text(pieces)), _rich_text(*elements)


def test_message(sent_by):
    text = (f"[TEST] Slack message from SendAuth, sent by {sent_by.name}. "
            "Authentication requests will arrive like this. Nobody needs to do anything.")
    return escape(text), _rich_text(_text(text))


def classify(response):
    status = response.status_code
    body = json_body(response)
    if body is not None and body.get("ok") is True:
        return SendResult("accepted", status, external_id=body.get("ts"))
    code = body.get("error") if body else None
    if status == 200 and code:
        error = _slack_words(code)
    else:
        error = http_error_text(response, _slack_words(code) if code else None)
    if is_retryable_status(status) or code in RETRYABLE_ERRORS or (status == 200 and not code):
        return SendResult("retryable", status, error, retry_after=retry_after(response))
    return SendResult("permanent", status, error)


def _slack_words(code):
    advice = ADVICE.get(code)
    return f"Slack error {code}" + (f" ({advice})" if advice else "")


class SlackClient(WebApiClient):
    provider = "Slack"
    config_prefix = "SLACK"

    def send(self, message):
        return self.http.post(
            f"{self.base_url}/chat.postMessage", classify,
            headers={"Authorization": f"Bearer {message.bot_token}",
                     "Content-Type": "application/json; charset=utf-8"},
            json={"channel": message.member_id, "text": message.text,
                  **({"blocks": list(message.blocks)} if message.blocks else {}),
                  "unfurl_links": False, "unfurl_media": False},
        )


class Slack(Channel):
    name = "slack"
    label = "Slack"
    noun = "Slack"
    model = SlackSettings
    settings = (
        Setting("bot_token", "bot token", clean_bot_token, secret=True,
                needed="paste the bot token", kind="password", field_label="Bot token",
                description="Starts with xoxb-: your Slack app's settings → OAuth & "
                            "Permissions → Bot User OAuth Token. The app needs the chat:write "
                            "scope. Leave empty to keep the stored token.",
                render_kw={"placeholder": "xoxb-…"}),
    )
    enable_hint = ": find it in your Slack app's settings under OAuth & Permissions"
    preference_description = "A direct message from the organisation's Slack app."
    contact = Contact(
        "slack_member_id", "Slack member id", clean_member_id, field_label="Slack member id",
        description="Like U024BE7LH. In Slack: your profile → ⋮ → Copy member ID.",
        render_kw={"autocomplete": "off", "spellcheck": "false",
                   "autocapitalize": "characters"})
    page = Page(
        what="Slack message",
        provider="Slack",
        accepted_advice="Check your direct messages from the app in Slack "
                        "({user.slack_member_id}).",
        refused_advice="Check the bot token, the app's chat:write scope and your member id.",
        secret_word="token",
        enable_label="Enable Slack",
        enable_description="Send authentication requests as direct messages to users who have "
                           "Slack on in their messaging preferences.",
    )
    client_class = SlackClient

    def build(self, settings, transaction, link):
        template = message_templates.for_request("slack_text", transaction)
        return DirectMessage(self.secret(), self.recipient(transaction.user),
                             *request_message(transaction, link, template))

    def build_test(self, settings, sent_by):
        return DirectMessage(self.secret(settings), self.test_recipient(sent_by),
                             *test_message(sent_by))

    def build_notice(self, settings, user, notice):
        return DirectMessage(self.secret(), self.recipient(user),
                             f"*{escape(notice.subject)}*\n{escape(notice.text)}")

    @staticmethod
    def secrets(prepared):
        return [prepared.bot_token]
