"""Password attempts, counted before the password is checked (and passkey ceremonies begun,
counted per user: services.people.passkeys).

Each attempt takes one from every count it belongs to (per client address and per email at
sign-in; per user wherever a signed-in user or an answer types a password) in one atomic
increment in the rate limiter's store (Redis when set, else this process's memory), and only
then is the password checked: attempts released together cannot all slip past a count read
before any of them was added. A right password gives its counts back, so a person who types it
right is never slowed down by colleagues behind the same address.

If the store is unreachable the attempt goes through and the error is logged: a broken counter
must not lock everyone out of signing in.
"""
import logging
import math
import time

from flask import current_app
from limits import parse

from ...core.errors import ServiceError
from ...extensions import limiter

log = logging.getLogger(__name__)


class TooManyAttempts(ServiceError):
    """Past a limit; ``seconds`` is how long until the count starts again."""

    def __init__(self, message, seconds):
        super().__init__(message)
        self.seconds = seconds


class Attempt:
    """The counts one attempt took; ``give_back`` when the password was right."""

    def __init__(self, item=None, keys=()):
        self.item, self.keys = item, keys

    def give_back(self):
        for key in self.keys:
            try:
                limiter.limiter.hit(self.item, *key, cost=-1)
            except Exception:  # the store is down: the count expires with its window
                log.exception("Failed to rate limit: giving back a password attempt")


def _counting():
    return current_app.config["RATELIMIT_ENABLED"] and limiter.enabled


def take(setting, counts):
    """Count one attempt against the limit in the config ``setting`` under every key of
    ``counts`` ({key: message when past it}). Returns the Attempt, or raises TooManyAttempts
    with the first count that is past the limit (an attempt refused is still counted)."""
    if not _counting():
        return Attempt()
    item = parse(current_app.config[setting])
    prefix = current_app.config["REDIS_CHANNEL_PREFIX"]
    taken = []
    try:
        for key, message in counts.items():
            identifiers = (prefix, "password-attempts", key)
            taken.append(identifiers)
            if not limiter.limiter.hit(item, *identifiers):
                reset = limiter.limiter.get_window_stats(item, *identifiers).reset_time
                raise TooManyAttempts(message, max(1, math.ceil(reset - time.time())))
    except TooManyAttempts:
        raise
    except Exception:
        log.exception("Failed to rate limit password attempts")
    return Attempt(item, taken)


def of_user(user):
    """One password typed by a known ``user`` (a proof, a change, an answer), counted per user
    against PASSWORD_CHECK_RATE_LIMIT."""
    return take("PASSWORD_CHECK_RATE_LIMIT", {
        f"user:{user.id}": "Too many wrong passwords for your account in a short time."})
