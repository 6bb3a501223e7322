"""A fake Twilio Messages API: a real HTTP server on 127.0.0.1 that answers as Twilio documents.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth (Account SID
and auth token) and the form fields ``To``, ``From`` and ``Body``; 201 with the message
resource, or Twilio's error JSON: ``{"code", "message", "more_info", "status"}``.
"""
import base64
import re
import secrets
from urllib.parse import parse_qs

from . import http

PATH_RE = re.compile(r"/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json")
E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")
BODY_MAX_CHARS = 1600


def error(status, code, message, **extra):
    return Answer(status, {"code": code, "message": message,
                           "more_info": f"https://www.twilio.com/docs/errors/{code}",
                           "status": status, **extra})


class Answer(http.Answer):
    """Twilio's answers, as its error reference shows them."""

    @classmethod
    def authenticate(cls):
        return error(401, 20003, "Authenticate",
                     detail="Your AccountSid or AuthToken was incorrect.")

    @classmethod
    def invalid_to(cls, number):
        return error(400, 21211, f"The 'To' number {number} is not a valid phone number.")

    @classmethod
    def too_many_requests(cls, retry_after=None):
        answer = error(429, 20429, "Too Many Requests")
        if retry_after is not None:
            answer.headers["Retry-After"] = str(retry_after)
        return answer

    @classmethod
    def server_error(cls):
        return error(500, 20500, "Internal Server Error")


class FakeTwilio(http.FakeHttpService):
    name = "fake Twilio"

    def __init__(self, account_sid, auth_token, numbers=()):
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        # The account's own phone numbers: the only ones it may send from.
        self.numbers = set(numbers)

    @property
    def messages(self):
        """The bodies Twilio accepted, as {"To", "From", "Body"}, oldest first."""
        with self._lock:
            return [r.body for r in self.received if r.status == 201]

    def parse(self, raw, headers):
        return {name: values[0] for name, values in parse_qs(raw.decode()).items()}

    def process(self, path, headers, body, raw):
        match = PATH_RE.fullmatch(path)
        if not match:
            return error(404, 20404, f"The requested resource {path} was not found")
        if self._credentials(headers) != (self.account_sid, self.auth_token) \
                or match["sid"] != self.account_sid:
            return Answer.authenticate()
        to, sender, text = body.get("To"), body.get("From"), body.get("Body")
        if not to:
            return error(400, 21604, "A 'To' phone number is required.")
        if not E164_RE.fullmatch(to):
            return Answer.invalid_to(to)
        if not sender:
            return error(400, 21603, "A 'From' phone number is required.")
        if sender not in self.numbers:
            return error(400, 21606, f"The From phone number {sender} is not a valid, "
                                     "SMS-capable inbound phone number or short code for your "
                                     "account.")
        if not text:
            return error(400, 21602, "Message body is required.")
        if len(text) > BODY_MAX_CHARS:
            return error(400, 21617, "The concatenated message body exceeds the 1600 "
                                     "character limit.")
        return Answer(201, {"sid": "SM" + secrets.token_hex(16), "account_sid": self.account_sid,
                            "to": to, "from": sender, "body": text, "status": "queued",
                            "num_segments": str(-(-len(text) // 153))})

    @staticmethod
    def _credentials(headers):
        scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
        if scheme != "Basic":
            return None
        try:
            sid, _, token = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        return sid, token
