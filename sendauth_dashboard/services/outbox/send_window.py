"""Send no faster than a provider accepts: PagerDuty takes about 120 events per minute per
integration key (a 60 s look-back window). The dispatcher reserves room in the window before it
claims deliveries of a limited channel, so a burst waits in the outbox, costing neither 429s
nor database churn, and goes out as fast as the window allows.

``LocalWindow`` counts this process's sends; ``RedisWindow`` counts every dispatcher's sends,
for when several processes dispatch.
"""
import collections
import threading
import time

from ...runtime import SendWindow


class LocalWindow:
    def __init__(self, clock=time.time):
        self._clock = clock
        self._sent = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def reserve(self, key: str, limit: int, period: float, wanted: int) -> int:
        """Count up to ``wanted`` sends now; returns how many fit the window."""
        now = self._clock()
        with self._lock:
            sent = self._expire(key, period, now)
            granted = max(0, min(wanted, limit - len(sent)))
            sent.extend([now] * granted)
            return granted

    def release(self, key: str, count: int) -> None:
        """Give back reserved sends that were not made (fewer deliveries were due)."""
        with self._lock:
            sent = self._sent[key]
            for _ in range(min(count, len(sent))):
                sent.pop()

    def next_free_in(self, key: str, limit: int, period: float) -> float:
        now = self._clock()
        with self._lock:
            sent = self._expire(key, period, now)
            return 0.0 if len(sent) < limit else sent[0] + period - now

    def _expire(self, key, period, now):
        sent = self._sent[key]
        while sent and sent[0] <= now - period:
            sent.popleft()
        return sent


class RedisWindow:
    """The same window in a Redis sorted set, shared by every process (atomic Lua scripts)."""

    _RESERVE = """
    local key, now, period, limit, wanted = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
        tonumber(ARGV[3]), tonumber(ARGV[4])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
    local granted = math.max(0, math.min(wanted, limit - redis.call('ZCARD', key)))
    for i = 1, granted do
        redis.call('ZADD', key, now, ARGV[4 + i])
    end
    redis.call('EXPIRE', key, math.ceil(period) + 1)
    return granted
    """
    _NEXT_FREE = """
    local key, now, period, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
        tonumber(ARGV[3])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
    if redis.call('ZCARD', key) < limit then return '0' end
    return tostring(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] + period - now)
    """

    def __init__(self, url: str, prefix: str, clock=time.time):
        import redis

        self._errors = redis.RedisError
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._reserve = self._redis.register_script(self._RESERVE)
        self._next_free = self._redis.register_script(self._NEXT_FREE)
        self._prefix = prefix
        self._clock = clock
        self._mine = collections.defaultdict(list)  # members this process reserved last
        self._fallback = LocalWindow(clock)  # while Redis is away: limit this process alone

    def _key(self, key):
        return f"{self._prefix}:sendrate:{key}"

    def reserve(self, key: str, limit: int, period: float, wanted: int) -> int:
        members = [f"{self._clock():.6f}:{id(self)}:{n}:{time.perf_counter_ns()}"
                   for n in range(wanted)]
        try:
            granted = int(self._reserve(keys=[self._key(key)],
                                        args=[self._clock(), period, limit, wanted, *members]))
        except self._errors:
            return self._fallback.reserve(key, limit, period, wanted)
        self._mine[key] = members[:granted]
        return granted

    def release(self, key: str, count: int) -> None:
        unused = self._mine[key][len(self._mine[key]) - count:] if count else []
        try:
            if unused:
                self._redis.zrem(self._key(key), *unused)
        except self._errors:
            self._fallback.release(key, count)

    def next_free_in(self, key: str, limit: int, period: float) -> float:
        try:
            return max(0.0, float(self._next_free(keys=[self._key(key)],
                                                  args=[self._clock(), period, limit])))
        except self._errors:
            return self._fallback.next_free_in(key, limit, period)


def window_for(config) -> SendWindow:
    if config.get("REDIS_URL"):
        return RedisWindow(config["REDIS_URL"], config["REDIS_CHANNEL_PREFIX"])
    return LocalWindow()
