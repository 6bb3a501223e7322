"""SMS through Twilio's Programmable Messaging REST API.

``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with the form fields ``To``,
``From`` and ``Body``, HTTP basic auth with the Account SID and auth token. 201 means Twilio
queued the message (its ``num_segments`` says what it costs); errors are JSON ``{"code":
21211, "message": "...", "more_info": "...", "status": 400}``, with ``detail`` or ``details``
on some. 408, 429 (code 20429) and 5xx may pass later; other 4xx never will.

The text is made to cost as little as it can: GSM-7 where the meaning allows (``sms_text``),
cut with "..." (GSM-7; "…" would make it all UCS-2) to at most ``SMS_MAX_SEGMENTS``, and
the link always whole. Twilio's ``SmartEncoded`` is not sent: we replace characters
ourselves, so the count is known before the send (the test's result shows Twilio's).
"""
import dataclasses
import re
from dataclasses import dataclass, field

from ..models import SmsSettings
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
from .phone_numbers import clean_phone_number
from .sms_text import Segments, gsm_friendly, segments

# Four segments: 612 GSM-7 characters, or 268 UCS-2 ones.
SMS_MAX_SEGMENTS = 4
CUT_MARK = "..."
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

    @property
    def segments(self):
        return segments(self.body)


def _cut(piece, keep):
    return piece[: max(0, keep - len(CUT_MARK))].rstrip() + CUT_MARK


def fit(pieces, ending, max_segments=SMS_MAX_SEGMENTS):
    """``pieces`` and ``ending`` on lines of their own, in GSM-7 where the meaning allows,
    costing at most ``max_segments`` segments.

    The ending (the link) is always whole; the pieces give way from the last one first,
    cut with "...", or left out when too little of them would remain.
    """
    pieces = [gsm_friendly(p) for p in pieces if p]

    def fits(candidate):
        return segments("\n".join(candidate + [ending])).count <= max_segments

    for i in reversed(range(len(pieces))):
        if fits(pieces):
            break
        # The longest cut of this piece that fits: fewer characters never cost more.
        low, high = 0, len(pieces[i]) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if fits(pieces[:i] + [_cut(pieces[i], middle)] + pieces[i + 1:]):
                low = middle
            else:
                high = middle - 1
        if low >= SHORTEST_USEFUL_PIECE:
            pieces[i] = _cut(pieces[i], low)
        else:
            del pieces[i]
    return "\n".join(pieces + [ending])


def request_sms(transaction, link, template=None):
    """Who asks, their message and context as far as they fit, and always the whole link;
    in ``template``, the organisation's words, when it has its own (Settings → Messages)."""
    if template is not None:
        return templated_sms(template, message_templates.values_of(transaction, link))
    return fit(
        [f"SendAuth: {transaction.requestor.name} asks you to authenticate.",
         f"Message: {transaction.message}",
         f"Context: {transaction.context}" if transaction.context else None],
        f"Verify or deny: {link}",
    )


def templated_sms(template, values, max_segments=SMS_MAX_SEGMENTS):
    """The organisation's SMS filled in, in GSM-7 where the meaning allows: when it costs more
    than ``max_segments``, the context gives way first, then the message (cut with "...", or
    left out when too little would remain). The link is always whole."""
    values = dict(values)

    def text_with(name, value):
        return gsm_friendly(message_templates.as_text(
            message_templates.render(template, {**values, name: value})))

    for name in ("context", "message"):
        whole = values[name]
        if segments(text_with(name, whole)).count <= max_segments:
            break
        if not whole:
            continue
        low, high = 0, len(whole) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if segments(text_with(name, _cut(whole, middle))).count <= max_segments:
                low = middle
            else:
                high = middle - 1
        values[name] = _cut(whole, low) if low >= SHORTEST_USEFUL_PIECE else ""
    return text_with("context", values["context"])


def test_sms(sent_by):
    return gsm_friendly(f"[TEST] SMS from SendAuth, sent by {sent_by.name} from the SMS "
                        "settings. Authentication requests will arrive like this. Nobody needs "
                        "to do anything.")


def classify(response):
    status = response.status_code
    body = json_body(response) or {}
    if 200 <= status < 300:
        return SendResult("accepted", status, external_id=body.get("sid"),
                          note=body.get("num_segments"))
    error = http_error_text(response, _twilio_words(body))
    if is_retryable_status(status):
        return SendResult("retryable", status, error, retry_after=retry_after(response))
    return SendResult("permanent", status, error)


def _twilio_words(body):
    """``Twilio error 21211: The 'To' number ... (more detail) More: <docs URL>``, from
    Twilio's error body; ``detail`` (older) or ``details`` (newer) as Twilio sends them."""
    message = body.get("message")
    if not message:
        return None
    words = f"Twilio error {body['code']}: {message}" if body.get("code") else str(message)
    detail = body.get("details") or body.get("detail")
    if isinstance(detail, dict):
        detail = "; ".join(f"{key}: {value}" for key, value in detail.items())
    elif isinstance(detail, list):
        detail = "; ".join(map(str, detail))
    if detail:
        words += f" ({detail})"
    if isinstance(body.get("more_info"), str) and body["more_info"].startswith("https://"):
        words += f" More: {body['more_info']}"
    return words


class TwilioClient(WebApiClient):
    provider = "Twilio"
    config_prefix = "TWILIO"

    def send(self, sms):
        url = f"{self.base_url}/2010-04-01/Accounts/{sms.account_sid}/Messages.json"
        result = self.http.post(url, classify, auth=(sms.account_sid, sms.auth_token),
                                data={"To": sms.to, "From": sms.sender, "Body": sms.body})
        if not result.accepted:
            return result
        # Twilio's own count when it gives one (a messaging service's is 0 until later).
        ours = sms.segments
        count = int(result.note) if str(result.note or "").isdigit() else 0
        return dataclasses.replace(result, note=str(Segments(ours.encoding, count or ours.count)))


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
        return TextMessage(account_sid=settings.account_sid, auth_token=self.secret(settings),
                    sender=settings.sender, to=to, body=body)

    def build(self, settings, transaction, link):
        template = message_templates.for_request("sms_body", transaction)
        return self._sms(settings, self.recipient(transaction.user),
                         request_sms(transaction, link, template))

    def build_test(self, settings, sent_by):
        return self._sms(settings, self.test_recipient(sent_by), test_sms(sent_by))

    def build_notice(self, settings, user, notice):
        return self._sms(settings, self.recipient(user),
                         gsm_friendly(f"SendAuth: {notice.text}"))

    @staticmethod
    def secrets(prepared):
        return [prepared.auth_token]
