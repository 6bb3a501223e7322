"""SMS through Twilio's Programmable Messaging REST API.

``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with the form fields ``To``,
``From`` and ``Body``, HTTP basic auth with the Account SID and auth token. 201 means Twilio
queued the message; errors are JSON ``{"code": 21211, "message": "...", "more_info": "...",
"status": 400}``. 429 (code 20429) and 5xx may pass later; other 4xx never will.
"""
import re
from dataclasses import dataclass, field

from .phone_numbers import clean_phone_number
from .sending import (
    SendResult,
    WebApiClient,
    http_error_text,
    is_retryable_status,
    json_body,
    retry_after,
    truncate,
)

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
class Sms:
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
