"""Waiting for a request's answer without asking the database every second: the API's
``GET /api/v1/transactions/<id>?wait=N``.

The waiter subscribes to the live broker (the one every stream uses: in this process, or
through Redis from every process) before it reads the status, so an answer committed in
between is not missed; then it sleeps until an event about this transaction arrives, the
transaction's expiry passes, or the time is up, and reads the status again. It holds no
database connection while it sleeps. Under gevent the wait is a greenlet's, not a thread's.
"""
import time

from ...extensions import db
from ...models import utcnow
from ...runtime import runtime
from ..live.broker import CLOSE, RESYNC

# After the expiry, a little longer: the status then reads "expired" even before the sweep.
EXPIRY_MARGIN = 0.05


def until_answered(transaction, seconds, clock=time.monotonic):
    """Return once ``transaction`` is no longer pending, or after ``seconds``; the row is
    read again before it returns."""
    broker = runtime().broker
    subscription = broker.subscribe()
    deadline = clock() + seconds
    try:
        while True:
            db.session.refresh(transaction)
            now = utcnow()
            if transaction.status_at(now) != "pending":
                return
            left = min(deadline - clock(),
                       (transaction.expires_at - now).total_seconds() + EXPIRY_MARGIN)
            if left <= 0:
                return
            public_id = transaction.public_id
            db.session.commit()  # gives the connection back while waiting
            wake_at = clock() + left
            while (left := wake_at - clock()) > 0:
                message = subscription.get(timeout=left)
                if message is None or subscription.overflowed or _about(message, public_id):
                    subscription.overflowed = False
                    subscription.drain()
                    break
    finally:
        broker.unsubscribe(subscription)


def _about(message, public_id):
    if message is CLOSE or message is RESYNC:
        return True
    return isinstance(message, dict) and \
        (message.get("transaction") or {}).get("id") == public_id
