"""What providers post back: PagerDuty's V3 webhooks about the incidents SendAuth opened.

``POST /webhooks/pagerduty`` has no session and no CSRF token: PagerDuty proves a webhook is
its own with ``X-PagerDuty-Signature``, checked against the stored signing secret before the
body is read as JSON. A refused webhook is logged without its body. A webhook taken in, or one
about an incident that is not a request's, gets a 2xx (PagerDuty would retry anything else for
48 hours); one that cannot be stored now (database busy) gets the app's 503, so it is retried.
"""
import logging

from flask import Blueprint, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest, Forbidden, Unauthorized

from .. import channels, client_limits
from ..channels.pagerduty import signature_matches
from ..core.secrets import SecretUnreadable
from ..extensions import csrf, db
from ..services.requests import pagerduty_incidents

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)


def _refuse(exception_class, reason, advice):
    webhook_id = (request.headers.get("X-Webhook-Id") or "none")[:64]
    log.warning("PagerDuty webhook refused: %s (X-Webhook-Id %r, %d bytes, from %s)",
                reason, webhook_id, request.content_length or 0, request.remote_addr)
    exc = exception_class()
    exc.advice = advice
    raise exc


@bp.post("/pagerduty")
@client_limits.webhook
def pagerduty():
    raw = request.get_data(cache=True)
    try:
        secret = channels.channel("pagerduty").webhook_secret()
    except SecretUnreadable:
        _refuse(Forbidden, "the stored signing secret cannot be read (the keys changed)",
                "The stored webhook signing secret cannot be read. An admin pastes it again "
                "under Channels → PagerDuty.")
    if secret is None:
        _refuse(Forbidden, "no signing secret is stored",
                "No webhook signing secret is set up. An admin pastes it under Channels → "
                "PagerDuty.")
    header = request.headers.get("X-PagerDuty-Signature")
    if not header:
        _refuse(Unauthorized, "no X-PagerDuty-Signature",
                "A PagerDuty webhook is signed: the X-PagerDuty-Signature header is missing.")
    if not signature_matches(secret, raw, header):
        _refuse(Forbidden, "no signature matches the signing secret",
                "The signature does not match the signing secret stored under Channels → "
                "PagerDuty.")
    try:
        event = pagerduty_incidents.parse(raw)
    except pagerduty_incidents.WebhookError as exc:
        error = BadRequest()
        error.advice = str(exc)
        raise error from None
    received = pagerduty_incidents.receive(event)
    try:
        db.session.commit()
    except IntegrityError:
        # The same webhook, taken in by a request that committed first.
        db.session.rollback()
        received = pagerduty_incidents.Received(False, "already received")
    return {"status": "recorded" if received.recorded else "ignored",
            "reason": received.reason}, 202
