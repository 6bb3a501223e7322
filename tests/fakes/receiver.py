"""A help desk's webhook receiver: a real HTTP server that verifies every delivery with the
``standardwebhooks`` package (not the dashboard's code), as the README tells receivers to, and
records what it got. Scripted answers (a 500, a 410, a redirect, a hang) are given as is."""
from dataclasses import dataclass

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from .http import Answer, FakeHttpService


@dataclass(frozen=True)
class Verified:
    msg_id: str
    payload: dict
    secret: str  # which of the receiver's secrets verified it
    signatures: int  # how many v1 signatures the header carried


class WebhookReceiver(FakeHttpService):
    name = "webhook receiver"

    def __init__(self, *secrets):
        super().__init__()
        self.secrets = list(secrets)
        self.verified = []
        self.refused = 0

    def parse(self, raw, headers):
        return raw

    def process(self, path, headers, body, raw):
        for secret in list(self.secrets):
            try:
                payload = Webhook(secret).verify(raw, headers)
            except WebhookVerificationError:
                continue
            signatures = len(headers.get("webhook-signature", "").split())
            self.verified.append(Verified(headers["webhook-id"], payload, secret, signatures))
            return Answer(204)
        self.refused += 1
        return Answer(401, {"error": "no signature matched"})

    def types(self):
        return [v.payload["type"] for v in self.verified]
