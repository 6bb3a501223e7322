"""A fake Slack Web API ``chat.postMessage``: a real HTTP server on 127.0.0.1.

Every request is checked against Slack's published spec of the method
(``specs/slack_web_chat_postMessage.json``, from slackapi/slack-api-specs): its parameters
and their types, the required ``channel``, nothing it does not list. A request that breaks it
gets Slack's ``invalid_arguments`` answer and is kept in ``spec_violations``. The token goes
in ``Authorization: Bearer`` as Slack's own clients send it (the spec names a ``token``
header). The fake posts to known member ids only and answers as Slack does: HTTP 200 with
``{"ok": true, "channel": "D…", "ts": "…", "message": {...}}``, HTTP 200 with
``{"ok": false, "error": "invalid_auth"}`` and the like, or 429 with Retry-After. Its own
answers are checked against the spec's success and error schemas too.
"""
import itertools

from . import http, spec

SPEC = spec.load("slack_web_chat_postMessage.json")
OPERATION = SPEC["paths"]["/chat.postMessage"]["post"]
# The error codes Slack's machine-readable spec lists for chat.postMessage.
SPEC_ERRORS = tuple(OPERATION["responses"]["default"]["schema"]["properties"]["error"]["enum"])
# Errors the method's reference page (api.slack.com/methods/chat.postMessage) and the Web API
# basics page document beyond that list; the fake can answer with them too.
REFERENCE_PAGE_ERRORS = ("missing_scope", "token_revoked", "user_not_found", "ratelimited",
                         "internal_error", "fatal_error", "service_unavailable",
                         "request_timeout", "invalid_json", "invalid_arguments")


def _request_schema():
    """The method's form parameters as the JSON body Slack also accepts: same names and
    types; ``attachments`` and ``blocks`` ("JSON-based array ... as a URL-encoded string")
    may be the array itself in JSON."""
    properties, required = {}, []
    for parameter in OPERATION["parameters"]:
        if parameter["in"] != "formData":
            continue
        kind = {"type": parameter["type"]}
        if "JSON-based array" in parameter.get("description", ""):
            kind = {"type": ["string", "array"]}
        properties[parameter["name"]] = kind
        if parameter.get("required"):
            required.append(parameter["name"])
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def _error_schema():
    schema = dict(OPERATION["responses"]["default"]["schema"])
    error = dict(schema["properties"]["error"], enum=[*SPEC_ERRORS, *REFERENCE_PAGE_ERRORS])
    return {**schema, "properties": {**schema["properties"], "error": error}}


REQUEST = spec.validator(_request_schema(), SPEC, "definitions")
SUCCESS = spec.validator(OPERATION["responses"]["200"]["schema"], SPEC, "definitions")
ERROR = spec.validator(_error_schema(), SPEC, "definitions")


def check_answer(answer):
    """The fake's own answer must be one Slack documents."""
    if not isinstance(answer.body, dict):
        return
    schema = SUCCESS if answer.body.get("ok") is True else ERROR
    problems = spec.problems(schema, answer.body)
    if problems:
        raise AssertionError(f"the fake Slack's answer breaks Slack's spec: {problems}")


class Answer(http.Answer):
    """Slack's answers, as its chat.postMessage reference shows them."""

    @classmethod
    def error(cls, code):
        answer = cls(200, {"ok": False, "error": code})
        check_answer(answer)
        return answer

    @classmethod
    def unlisted_error(cls, code):
        """An error code no page of Slack's lists (yet): Slack adds codes over time."""
        return cls(200, {"ok": False, "error": code})

    @classmethod
    def rate_limited(cls, retry_after=30):
        return cls(429, {"ok": False, "error": "ratelimited"},
                   headers={"Retry-After": str(retry_after)})


class FakeSlack(http.FakeHttpService):
    name = "fake Slack"

    def __init__(self, bot_token, member_ids=()):
        super().__init__()
        self.bot_token = bot_token
        self.member_ids = set(member_ids)
        self.posted = []
        self.spec_violations = []
        self._timestamps = (f"1700000000.{n:06d}" for n in itertools.count(1))

    @property
    def url(self):
        return f"{self.base_url}/api"

    @property
    def messages(self):
        """The messages Slack posted, as {"channel", "text", ...}, oldest first."""
        with self._lock:
            return list(self.posted)

    @staticmethod
    def shown(message):
        """What Slack shows of a posted message: its rich_text blocks' words (a link as its
        URL), else its text."""
        words = [element.get("text") or element.get("url", "")
                 for block in message.get("blocks") or () if block["type"] == "rich_text"
                 for section in block["elements"] for element in section["elements"]]
        return "".join(words) if words else message["text"]

    def process(self, path, headers, body, raw):
        answer = self._answer(path, headers, body)
        check_answer(answer)
        return answer

    def _answer(self, path, headers, body):
        if path != "/api/chat.postMessage":
            return Answer(404, "Not Found", content_type="text/plain")
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme != "Bearer" or not token:
            return Answer.error("not_authed")
        if token != self.bot_token:
            return Answer.error("invalid_auth")
        if not headers.get("Content-Type", "").startswith("application/json") \
                or not isinstance(body, dict):
            return Answer.error("invalid_json")
        problems = spec.problems(REQUEST, body)
        if problems:
            with self._lock:
                self.spec_violations.append(problems)
            return Answer.error("invalid_arguments")
        if body["channel"] not in self.member_ids:
            return Answer.error("channel_not_found")
        if not body.get("text") and not body.get("blocks"):
            return Answer.error("no_text")
        ts = next(self._timestamps)
        with self._lock:
            self.posted.append(body)
        return Answer(200, {"ok": True, "channel": "D" + body["channel"][1:], "ts": ts,
                            "message": {"type": "message", "text": body.get("text", ""),
                                        "ts": ts}})
