"""``Idempotency-Key`` on POST (IETF draft-ietf-httpapi-idempotency-key-header): a client that
sends a request again (a timeout, a retry) with the same key gets the first answer again, and
nothing is done twice.

Per API key: the first request claims the key with a row of its own, committed before it runs
(a unique constraint decides between requests that arrive together). While it runs, the same
key is 409; once it has answered, the same key and body within 24 hours are given that answer
(status and body) again; the same key with another request is 422. A request that failed on
our side (5xx), or was refused for now (409, 429), frees its key to be tried again, and so
does a claim left unanswered for 5 minutes (its process died). Answers older than a day are
deleted as new keys are claimed.
"""
import hashlib
from datetime import timedelta

from flask import Response, request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from ..core.text import control_character
from ..extensions import db
from ..models import IdempotentRequest, utcnow
from .problems import Problem

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
KEPT_FOR = timedelta(hours=24)
# A claim still unanswered after this was left by a process that died mid-request: the key is
# free again (no request runs for minutes: a ?wait= is a GET).
ABANDONED_AFTER = timedelta(minutes=5)
PARAMETER = {
    "name": HEADER, "in": "header", "required": False,
    "description": "Any unique string (a UUID, say): the same key and body within 24 hours "
                   "return the first answer again; another body with it is 422; while the "
                   "first is still running, 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS},
}
# Answers that leave the key free: the request may be sent again with it.
NOT_KEPT = {409, 429}


def once(api_key, run):
    """``run()``'s answer, or the one given before for this Idempotency-Key."""
    key = request.headers.get(HEADER)
    if key is None:
        return run()
    if not key or len(key) > MAX_KEY_CHARS or control_character(key):
        raise Problem(400, f"The {HEADER} header must be 1 to {MAX_KEY_CHARS} characters on "
                           "one line, such as a UUID.")
    fingerprint = hashlib.sha256(
        b"\n".join((request.method.encode(), request.path.encode(), request.get_data()))
    ).hexdigest()
    claim = _claim(api_key, key, fingerprint)
    try:
        response = run()
    except Problem as exc:
        response = exc.get_response()
    except BaseException:
        _forget(claim)
        raise
    if response.status_code >= 500 or response.status_code in NOT_KEPT:
        _forget(claim)
    else:
        db.session.execute(update(IdempotentRequest).where(IdempotentRequest.id == claim).values(
            status_code=response.status_code, body=response.get_data(as_text=True),
            headers={"Content-Type": response.headers.get("Content-Type", "")}))
        db.session.commit()
    return response


def _claim(api_key, key, fingerprint, now=None, retried=False):
    """The id of this request's claim on ``key``; a problem when another has it."""
    now = now or utcnow()
    db.session.execute(delete(IdempotentRequest).where(
        IdempotentRequest.created_at < now - KEPT_FOR))
    row = IdempotentRequest(api_key_id=api_key.id, key=key, fingerprint=fingerprint,
                            created_at=now)
    db.session.add(row)
    try:
        db.session.commit()
        return row.id
    except IntegrityError:
        db.session.rollback()
    earlier = db.session.scalar(select(IdempotentRequest).where(
        IdempotentRequest.api_key_id == api_key.id, IdempotentRequest.key == key))
    if earlier is not None and earlier.status_code is None and not retried and \
            earlier.created_at < now - ABANDONED_AFTER:
        _forget(earlier.id)
        return _claim(api_key, key, fingerprint, now, retried=True)
    if earlier is None or earlier.status_code is None:
        raise Problem(409, f"A request with this {HEADER} is still running. Wait for its "
                           "answer, then send it again to read it.", headers={"Retry-After": "1"})
    if earlier.fingerprint != fingerprint:
        raise Problem(422, f"This {HEADER} was used for another request in the last 24 hours. "
                           "Use a new key for a new request.")
    raise _Replay(earlier)


class _Replay(Problem):
    """The first answer again: raised so the view never runs."""

    def __init__(self, earlier):
        super().__init__(earlier.status_code, "replayed")
        self.earlier = (earlier.status_code, earlier.body, dict(earlier.headers or {}))

    def get_response(self, environ=None, scope=None):
        status, body, headers = self.earlier
        return Response(body, status=status, headers={
            **headers, "Idempotent-Replayed": "true", "Cache-Control": "no-store"})


def _forget(claim):
    """Free the key: the request may be sent again with it."""
    try:
        db.session.rollback()
        db.session.execute(delete(IdempotentRequest).where(IdempotentRequest.id == claim))
        db.session.commit()
    except OperationalError:
        db.session.rollback()  # the database is down: the claim stays, answered 409 a day
