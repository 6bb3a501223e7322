"""How long a delivery that may be retried waits before its next attempt."""
import random

RETRY_AFTER_CAP_SECONDS = 3600.0


def backoff_seconds(attempts, result, config, rng=random):
    """Capped exponential backoff with jitter; never sooner than a Retry-After asks."""
    base = config["DELIVERY_BACKOFF_BASE_SECONDS"]
    cap = config["DELIVERY_BACKOFF_CAP_SECONDS"]
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if result.http_status == 429:
        delay = max(delay, config["DELIVERY_RATE_LIMITED_FLOOR_SECONDS"])
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, RETRY_AFTER_CAP_SECONDS))
    return delay
