"""SMS through Twilio's Programmable Messaging REST API.

``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with the form fields ``To``,
``From`` and ``Body``, HTTP basic auth with the Account SID and auth token. 201 means Twilio
queued the message; errors are JSON ``{"code": 21211, "message": "...", "more_info": "...",
"status": 400}``. 429 (code 20429) and 5xx may pass later; other 4xx never will.
"""
import re
from dataclasses import dataclass, field

from ..models import SmsSettings
from .base import Channel, Contact, Page
from .http import (
    SendResult,
    WebApiClient,
    http_error_text,
    is_retryable_status,
    json_body,
    retry_after,
    truncate,
)
from .integration import Setting
from .phone_numbers import clean_phone_number

SMS_MAX_CHARS = 500
# A message or context cut shorter than this is dropped rather than kept as a stub.
SHORTEST_USEFUL_PIECE = 16
_ACCOUNT_SID_RE = re.compile(r"AC[0-9a-fA-F]{32}")
_AUTH_TOKEN_RE = re.compile(r"[0-9a-fA-F]{32}")
_CONSOLE = "Find it in the Twilio Console under Account Info."


def clean_account_sid(raw):
    sid = (raw or "").strip()
    if not sid:
        return None
    if _ACCOUNT_SID_RE.fullmatch(sid):
        return "AC" + sid[2:].lower()
    if sid.startswith(("SK", "MG", "PN")):
        problem = (f"yours starts with {sid[:2]}, which is another kind of Twilio SID "
                   "(an API key, a messaging service or a phone number)")
    elif not sid.startswith("AC"):
        problem = "yours does not start with AC"
    elif len(sid) != 34:
        problem = f"yours has {len(sid)} characters"
    else:
        problem = "yours has characters other than 0-9 and a-f after the AC"
    raise ValueError(f"The Account SID is AC followed by 32 hexadecimal digits (0-9, a-f); "
                     f"{problem}. {_CONSOLE}")


def clean_auth_token(raw):
    token = (raw or "").strip()
    if _AUTH_TOKEN_RE.fullmatch(token):
        return token.lower()
    problem = (f"yours has {len(token)} characters" if len(token) != 32
               else "yours has characters other than 0-9 and a-f")
    raise ValueError(f"The auth token is 32 hexadecimal digits (0-9, a-f); {problem}. "
                     f"{_CONSOLE} Click Show to copy it.")


def clean_sender(raw):
    return clean_phone_number(raw, "sender number")


@dataclass(frozen=True)
class TextMessage:
    account_sid: str
    auth_token: str = field(repr=False)
    sender: str
    to: str
    body: str


def fit(pieces, ending, limit=SMS_MAX_CHARS):
    """``pieces`` and ``ending`` on lines of their own in at most ``limit`` characters.

    The ending (the link) is always whole; the pieces give way from the last one first,
    cut with a mark, or left out when too little of them would remain.
    """
    pieces = [p for p in pieces if p]
    for i in reversed(range(len(pieces))):
        over = len("\n".join(pieces + [ending])) - limit
        if over <= 0:
            break
        keep = len(pieces[i]) - over
        if keep >= SHORTEST_USEFUL_PIECE:
            pieces[i] = truncate(pieces[i], keep)
        else:
            del pieces[i]
    return "\n".join(pieces + [ending])


def request_sms(transaction, link):
    """Who asks, their message and context as far as they fit, and always the whole link."""
    return fit(
        [f"SendAuth: {transaction.requestor.name} asks you to authenticate.",
         f"Message: {transaction.message}",
         f"Context: {transaction.context}" if transaction.context else None],
        f"Verify or deny: {link}",
    )


def test_sms(sent_by):
    return (f"[TEST] SMS from SendAuth, sent by {sent_by.name}. Authentication requests will "
            "arrive like this. Nobody needs to do anything.")


def classify(response):
    status = response.status_code
    body = json_body(response) or {}
    if 200 <= status < 300:
        return SendResult("accepted", status, external_id=body.get("sid"))
    error = http_error_text(response, _twilio_words(body))
    if is_retryable_status(status):
        return SendResult("retryable", status, error, retry_after=retry_after(response))
    return SendResult("permanent", status, error)


def _twilio_words(body):
    """``Twilio error 21211: The 'To' number ... (more detail)``, from Twilio's error body."""
    message = body.get("message")
    if not message:
        return None
    words = f"Twilio error {body['code']}: {message}" if body.get("code") else str(message)
    if body.get("detail"):
        words += f" ({body['detail']})"
    return words


class TwilioClient(WebApiClient):
    provider = "Twilio"
    config_prefix = "TWILIO"

    def send(self, sms):
        url = f"{self.base_url}/2010-04-01/Accounts/{sms.account_sid}/Messages.json"
        return self.http.post(url, classify, auth=(sms.account_sid, sms.auth_token),
                              data={"To": sms.to, "From": sms.sender, "Body": sms.body})


class Sms(Channel):
    name = "sms"
    label = "SMS"
    noun = "SMS"
    model = SmsSettings
    settings = (
        Setting("account_sid", "Account SID", clean_account_sid, field_label="Account SID",
                description="AC and 32 more characters (0-9, a-f): Twilio Console → Account "
                            "Info.",
                render_kw={"autocomplete": "off", "spellcheck": "false",
                           "autocapitalize": "off"}),
        Setting("auth_token", "auth token", clean_auth_token, secret=True,
                needed="paste the auth token", kind="password", field_label="Auth token",
                description="32 characters (0-9, a-f), next to the Account SID. Leave empty to "
                            "keep the stored token."),
        Setting("sender", "sender number", clean_sender, kind="tel", field_label="Sender number",
                description="A Twilio phone number of your account that can send SMS, in "
                            "international format, e.g. +14155550123."),
    )
    enable_hint = ": the Twilio Console shows them under Account Info and Phone Numbers"
    preference_description = "A text message to your phone."
    contact = Contact(
        "phone", "phone number", clean_phone_number, field_label="Phone number",
        description="In international format: + and the country code, e.g. +14155550123.",
        kind="tel", render_kw={"autocomplete": "tel"})
    page = Page(
        what="SMS",
        provider="Twilio",
        accepted_advice="Check that it arrived at {user.phone}.",
        refused_advice="Check the Account SID, auth token and sender number.",
        secret_word="token",
        enable_label="Enable SMS",
        enable_description="Text authentication requests to users who have SMS on in their "
                           "messaging preferences.",
        external_id_label="message SID",
    )
    client_class = TwilioClient

    def _sms(self, settings, to, body):
        return TextMessage(account_sid=settings.account_sid, auth_token=self.secret(),
                    sender=settings.sender, to=to, body=body)

    def build(self, settings, transaction, link):
        return self._sms(settings, self.recipient(transaction.user),
                         request_sms(transaction, link))

    def build_test(self, settings, sent_by):
        return self._sms(settings, self.test_recipient(sent_by), test_sms(sent_by))

    def build_notice(self, settings, user, notice):
        return self._sms(settings, self.recipient(user),
                         truncate(f"SendAuth: {notice.text}", SMS_MAX_CHARS))

    @staticmethod
    def secrets(prepared):
        return [prepared.auth_token]
