"""The benchmarks' fake PagerDuty keeps working when the test fake it extends changes: it once
overrode a method the test fake no longer called, and measured nothing without saying so."""
import requests

from bench.fakes import BenchPagerDuty
from tests.support.helpers import TEST_KEY


def event(dedup_key):
    return {"routing_key": TEST_KEY, "event_action": "trigger", "dedup_key": dedup_key,
            "payload": {"summary": "s", "source": "bench", "severity": "info"}}


def test_the_bench_fake_records_arrivals_and_enforces_its_rate_limit():
    fake = BenchPagerDuty(rate_limit=2, window_seconds=60, retry_after=True).start()
    try:
        statuses = [requests.post(fake.url, json=event(f"key-{n}"), timeout=5).status_code
                    for n in range(3)]
        assert statuses == [202, 202, 429]
        assert set(fake.arrivals) == {"key-0", "key-1", "key-2"}
        assert set(fake.accepted_at) == {"key-0", "key-1"}
    finally:
        fake.stop()
