"""A fake Slack Web API ``chat.postMessage``: a real HTTP server on 127.0.0.1.

It checks the bot token in ``Authorization: Bearer``, posts to known member ids only, and
answers as Slack does: HTTP 200 with ``{"ok": true, "channel": "D…", "ts": "…"}``, HTTP 200
with ``{"ok": false, "error": "invalid_auth"}`` and the like, or 429 with Retry-After.
"""
import itertools

from . import http


class Answer(http.Answer):
    """Slack's answers, as its chat.postMessage reference shows them."""

    @classmethod
    def error(cls, code):
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
        self._timestamps = (f"1700000000.{n:06d}" for n in itertools.count(1))

    @property
    def url(self):
        return f"{self.base_url}/api"

    @property
    def messages(self):
        """The messages Slack posted, as {"channel", "text", ...}, oldest first."""
        with self._lock:
            return list(self.posted)

    def process(self, path, headers, body, raw):
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
        if body.get("channel") not in self.member_ids:
            return Answer.error("channel_not_found")
        if not body.get("text"):
            return Answer.error("no_text")
        with self._lock:
            self.posted.append(body)
        return Answer(200, {"ok": True, "channel": "D" + body["channel"][1:],
                            "ts": next(self._timestamps),
                            "message": {"type": "message", "text": body["text"]}})
