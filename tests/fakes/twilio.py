"""A fake Twilio Messages API: a real HTTP server on 127.0.0.1 that answers as Twilio documents.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth (Account SID
and auth token) and form fields. Every request is checked against Twilio's published spec of
the operation (``specs/twilio_api_v2010_messages_create.json``, from twilio/twilio-oai): the
path's Account SID, basic auth, the form content type, each field's name and type, ``To``
required, a sender (``From`` or ``MessagingServiceSid``) and content (``Body``, ``MediaUrl``
or ``ContentSid``). A request that breaks it gets Twilio's 400 "Invalid parameter" (20001)
and is kept in ``spec_violations``. Otherwise: 201 with the message resource (checked against
the spec's 201 schema, ``num_segments`` counted as Twilio counts), or Twilio's error JSON
``{"code", "message", "more_info", "status"}`` (``detail``/``details`` on some).
"""
import base64
import re
import secrets
from urllib.parse import parse_qs

from . import http, spec

SPEC = spec.load("twilio_api_v2010_messages_create.json")
PATH_TEMPLATE = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
OPERATION = SPEC["paths"][PATH_TEMPLATE]["post"]
FORM_SCHEMA = OPERATION["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
FORM = spec.validator(FORM_SCHEMA, SPEC, "components")
ACCOUNT_SID = spec.validator(OPERATION["parameters"][0]["schema"], SPEC, "components")
CREATED = spec.validator(
    OPERATION["responses"]["201"]["content"]["application/json"]["schema"], SPEC, "components")
# "conditional": at least one field of each group.
ONE_OF_EACH = OPERATION["x-twilio"]["conditional"]

PATH_RE = re.compile(r"/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json")
E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")
BODY_MAX_CHARS = 1600
# GSM 03.38, as Twilio's "What is GSM-7" page lists it; the extension takes two septets.
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMN"
           "OPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def num_segments(text):
    """Twilio's count: GSM-7 160/153 septets, else UCS-2 70/67 code units; a character is
    never split between segments."""
    if all(c in GSM7 or c in GSM7_EXTENSION for c in text):
        units, single, part = [1 + (c in GSM7_EXTENSION) for c in text], 160, 153
    else:
        units, single, part = [1 + (ord(c) > 0xFFFF) for c in text], 70, 67
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for size in units:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count


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
    def invalid_parameter(cls, problems):
        return error(400, 20001, "Invalid parameter", details={"problems": problems})

    @classmethod
    def too_many_requests(cls, retry_after=None):
        answer = error(429, 20429, "Too Many Requests")
        if retry_after is not None:
            answer.headers["Retry-After"] = str(retry_after)
        return answer

    @classmethod
    def request_timeout(cls):
        return error(408, 20408, "Request Timeout")

    @classmethod
    def server_error(cls):
        return error(500, 20500, "Internal Server Error")

    @classmethod
    def gateway_page(cls, status=502):
        """What a proxy in front of Twilio answers: an HTML page, no JSON."""
        return cls(status, "<html><body><h1>502 Bad Gateway</h1></body></html>",
                   content_type="text/html")


def form_fields(raw):
    """The form as the spec types it: repeated fields (MediaUrl) as lists, booleans and
    numbers as such; text that is not of its type stays text, for the schema to refuse."""
    fields = {}
    for name, values in parse_qs(raw.decode(), keep_blank_values=True).items():
        kind = FORM_SCHEMA["properties"].get(name, {}).get("type")
        if kind == "array":
            fields[name] = values
            continue
        value = values[0]
        if kind == "boolean" and value in ("true", "false"):
            value = value == "true"
        elif kind in ("integer", "number") and re.fullmatch(r"-?[0-9]+", value):
            value = int(value)
        fields[name] = value
    return fields


def spec_problems(path_sid, headers, fields):
    problems = [f"AccountSid: {p}" for p in spec.problems(ACCOUNT_SID, path_sid)]
    if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
        problems.append("Content-Type: not application/x-www-form-urlencoded")
    if not (headers.get("Authorization") or "").startswith("Basic "):
        problems.append("Authorization: not HTTP basic (accountSid_authToken)")
    problems += spec.problems(FORM, fields)
    lowered = {name.lower() for name in fields}
    for group in ONE_OF_EACH:
        if not lowered & {name.replace("_", "") for name in group}:
            problems.append(f"body: needs one of {', '.join(group)}")
    return problems


class FakeTwilio(http.FakeHttpService):
    name = "fake Twilio"

    def __init__(self, account_sid, auth_token, numbers=()):
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        # The account's own phone numbers: the only ones it may send from.
        self.numbers = set(numbers)
        self.spec_violations = []

    @property
    def messages(self):
        """The bodies Twilio accepted, as {"To", "From", "Body"}, oldest first."""
        with self._lock:
            return [r.body for r in self.received if r.status == 201]

    def parse(self, raw, headers):
        return form_fields(raw)

    def process(self, path, headers, body, raw):
        match = PATH_RE.fullmatch(path)
        if not match:
            return error(404, 20404, f"The requested resource {path} was not found")
        problems = spec_problems(match["sid"], headers, body)
        if problems:
            with self._lock:
                self.spec_violations.append(problems)
            return Answer.invalid_parameter(problems)
        if self._credentials(headers) != (self.account_sid, self.auth_token) \
                or match["sid"] != self.account_sid:
            return Answer.authenticate()
        to, sender, text = body.get("To"), body.get("From"), body.get("Body")
        if not E164_RE.fullmatch(to):
            return Answer.invalid_to(to)
        if sender not in self.numbers:
            return error(400, 21606, f"The From phone number {sender} is not a valid, "
                                     "SMS-capable inbound phone number or short code for your "
                                     "account.")
        if not text:
            return error(400, 21602, "Message body is required.")
        if len(text) > BODY_MAX_CHARS:
            return error(400, 21617, "The concatenated message body exceeds the 1600 "
                                     "character limit.")
        sid = "SM" + secrets.token_hex(16)
        created = {"sid": sid, "account_sid": self.account_sid, "api_version": "2010-04-01",
                   "to": to, "from": sender, "body": text, "status": "queued",
                   "direction": "outbound-api", "num_media": "0",
                   "num_segments": str(num_segments(text)), "price": None, "error_code": None,
                   "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"}
        problems = spec.problems(CREATED, created)
        if problems:
            raise AssertionError(f"the fake Twilio's answer breaks Twilio's spec: {problems}")
        return Answer(201, created)

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
