"""The test suite's fake PagerDuty (tests/fakes/pagerduty.py), plus what benchmarks need: the
time each event arrived, and, when asked, PagerDuty's documented rate limit per integration key
(about 120 events per minute, 60 s look-back window) answered with 429 "throttle event"."""
import threading
import time
from collections import defaultdict, deque

from tests.fakes.pagerduty import Answer, FakePagerDuty, validate

PAGERDUTY_EVENTS_PER_WINDOW = 120
PAGERDUTY_WINDOW_SECONDS = 60.0


class BenchPagerDuty(FakePagerDuty):
    def __init__(self, rate_limit=None, window_seconds=PAGERDUTY_WINDOW_SECONDS,
                 retry_after=False, **kwargs):
        super().__init__(**kwargs)
        self.rate_limit = rate_limit
        self.window_seconds = window_seconds
        self.retry_after = retry_after
        self.arrivals = {}  # dedup_key -> CLOCK_MONOTONIC time its first request arrived
        self.accepted_at = {}  # dedup_key -> when it was accepted (202)
        self._window = defaultdict(deque)  # routing key -> times of accepted events
        self._arrival = threading.local()

    def _handle(self, request):
        self._arrival.time = time.monotonic()
        super()._handle(request)

    def process(self, path, headers, body, raw):
        arrived = self._arrival.time
        # The limit counts valid events only (validating twice costs, so only when limiting).
        well_formed = isinstance(body, dict) and (self.rate_limit is None or not validate(body))
        dedup_key = body.get("dedup_key") if well_formed else None
        with self._lock:
            if dedup_key:
                self.arrivals.setdefault(dedup_key, arrived)
            if well_formed and self.rate_limit is not None:
                throttled = self._throttle(body["routing_key"], arrived)
                if throttled is not None:
                    return throttled
        answer = super().process(path, headers, body, raw)
        if answer.status == 202 and dedup_key:
            with self._lock:
                self.accepted_at.setdefault(dedup_key, time.monotonic())
        return answer

    def _throttle(self, key, now):
        """429 when the key had ``rate_limit`` events accepted in the window; else count it."""
        window = self._window[key]
        while window and window[0] <= now - self.window_seconds:
            window.popleft()
        if len(window) >= self.rate_limit:
            wait = window[0] + self.window_seconds - now
            return Answer.rate_limited(retry_after=int(wait) + 1 if self.retry_after else None)
        window.append(now)
        return None

    @property
    def statuses(self):
        with self._lock:
            counts = defaultdict(int)
            for received in self.received:
                counts[received.status] += 1
            return dict(counts)
