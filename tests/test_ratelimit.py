"""A burst waits its turn in the outbox instead of running into PagerDuty's 120 a minute."""
import pytest
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.outbox.dispatcher import Dispatcher
from sendauth_dashboard.services.outbox.send_window import LocalWindow, RedisWindow
from tests.support.config import REDIS_URL, need, redis_available
from tests.support.helpers import configure_pagerduty, send_request


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_the_window_admits_the_limit_then_says_how_long_to_wait():
    clock = Clock()
    window = LocalWindow(clock)
    assert window.reserve("pagerduty", 3, 60, 5) == 3
    assert window.next_free_in("pagerduty", 3, 60) == 60
    clock.now += 20
    assert window.reserve("pagerduty", 3, 60, 1) == 0
    assert window.next_free_in("pagerduty", 3, 60) == 40
    clock.now += 40
    assert window.reserve("pagerduty", 3, 60, 5) == 3
    assert window.reserve("other", 3, 60, 1) == 1, "each channel has its own window"


def test_unused_reservations_are_given_back():
    window = LocalWindow(Clock())
    assert window.reserve("pagerduty", 3, 60, 3) == 3
    window.release("pagerduty", 2)
    assert window.reserve("pagerduty", 3, 60, 3) == 2


@pytest.fixture
def app_config(fake_pagerduty):
    return {"PAGERDUTY_EVENTS_URL": fake_pagerduty.url,
            "DELIVERY_RATE_LIMITS": {"pagerduty": [3, 60]}}


def test_a_burst_beyond_the_limit_waits_without_attempts_or_429s(app, make_user, fake_pagerduty):
    configure_pagerduty(app)
    clock = Clock()
    runtime(app).send_window = LocalWindow(clock)
    requestor = make_user("requestor")
    users = [make_user("member", notify_pagerduty=True) for _ in range(5)]
    for user in users:
        send_request(app, requestor, user)
    dispatcher = Dispatcher(app, concurrency=8)

    assert dispatcher.run_until_idle() == ["sent"] * 3
    with app.app_context():
        waiting = db.session.scalars(select(Delivery).where(Delivery.status == "queued")).all()
        assert [(d.attempts, d.last_http_status) for d in waiting] == [(0, None)] * 2
        assert dispatcher._idle_wait(idle=300) == pytest.approx(60, abs=1), \
            "it sleeps until the window has room instead of polling"

    clock.now += 60
    assert dispatcher.run_until_idle() == ["sent"] * 2
    assert len(fake_pagerduty.received) == 5, "one request per delivery: no 429, no retry"


@pytest.fixture
def redis_windows():
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    import uuid

    prefix = f"sendauth-test-{uuid.uuid4().hex[:12]}"
    clock = Clock()
    return clock, RedisWindow(REDIS_URL, prefix, clock), RedisWindow(REDIS_URL, prefix, clock)


@pytest.mark.redis
def test_dispatchers_in_several_processes_share_one_window_through_redis(redis_windows):
    clock, first, second = redis_windows
    assert first.reserve("pagerduty", 3, 60, 2) == 2
    assert second.reserve("pagerduty", 3, 60, 2) == 1
    assert first.next_free_in("pagerduty", 3, 60) == pytest.approx(60)
    second.release("pagerduty", 1)
    assert first.reserve("pagerduty", 3, 60, 1) == 1
    clock.now += 61
    assert second.reserve("pagerduty", 3, 60, 5) == 3
