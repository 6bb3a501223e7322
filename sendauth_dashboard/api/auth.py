"""Who is calling: ``Authorization: Bearer sa_…`` and nothing else (never the session cookie,
so no page script or forged form reaches the API), what the key may do now, and how often.

Each request reads the key and its owner afresh: a revoked or expired key, or one whose owner
was deactivated, is 401 at once; one whose owner was demoted below what a scope needs is 403.
"""
import logging
import math
import time

from flask import current_app, g, request
from limits import parse

from ..extensions import db, limiter
from ..models import utcnow
from ..services.people import api_keys
from .problems import Problem

log = logging.getLogger(__name__)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="SendAuth API"'}


def authorize(scope):
    """The API key of this request, allowed ``scope`` and within its rate limit; else a
    problem (401, 403, 429)."""
    kind, _, secret = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise Problem(401, "Send an API key: Authorization: Bearer sa_… (make one under "
                           "Profile → API keys).", headers=CHALLENGE)
    key = api_keys.find(secret.strip())
    if key is None:
        raise Problem(401, "This API key is unknown, revoked or expired, or its owner is "
                           "deactivated.", headers=CHALLENGE)
    g.api_key = key
    _count(key)
    still_allowed(key, scope)
    if api_keys.note_use(key, request.remote_addr):
        db.session.commit()
    return key


def still_allowed(key, scope):
    """A problem unless ``key`` (as its row and its owner read now) may act with ``scope``."""
    if not key.usable_at(utcnow()):
        raise Problem(401, "This API key was revoked or has expired, or its owner was "
                           "deactivated.", headers=CHALLENGE)
    if scope is not None and (why := api_keys.refusal(key, scope)):
        raise Problem(403, why)


def _count(key):
    """API_RATE_LIMIT requests per key; past it 429 with Retry-After. The RateLimit headers
    (IETF draft) go on every answer (``add_headers``). A limit store that cannot be reached
    lets requests through, as for the pages."""
    if not current_app.config["RATELIMIT_ENABLED"] or limiter.limiter is None:
        return
    item = parse(current_app.config["API_RATE_LIMIT"])
    name = f"{current_app.config['REDIS_CHANNEL_PREFIX']}:api-key:{key.id}"
    try:
        allowed = limiter.limiter.hit(item, name)
        reset_at, remaining = limiter.limiter.get_window_stats(item, name)
    except Exception:  # noqa: BLE001  (the store is down: logged, not a refusal)
        log.exception("the API rate limit store cannot be reached")
        return
    reset = max(1, math.ceil(reset_at - time.time()))
    g.rate_limit_headers = {
        "RateLimit-Limit": str(item.amount), "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(reset),
        "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}"}
    if not allowed:
        raise Problem(429, f"This API key made more than {item.amount} requests in "
                           f"{item.get_expiry()} seconds. Wait {reset} seconds.",
                      headers={"Retry-After": str(reset)})


def add_headers(response):
    for name, value in getattr(g, "rate_limit_headers", {}).items():
        response.headers.setdefault(name, value)
    return response
