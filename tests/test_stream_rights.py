"""A person's streams share one reading of their rights (``rights.Rights``): thousands of streams
asking the database on every heartbeat and user event was most of a worker's CPU; sharing must
never let a stream act on a reading older than a change it has heard of."""
import threading

import pytest
from sqlalchemy import event as sa_event

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import User
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.live import rights as live_rights
from sendauth_dashboard.services.people import accounts
from tests.support.helpers import wait_until
from tests.support.sse import live_stream

ALLOWED = (True, True, False, 1, frozenset())


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def reads(monkeypatch):
    """Each read of the database, by user id; ``answer`` is what it finds."""
    made = []
    state = {"answer": ALLOWED, "during": None}

    def read(user_id):
        made.append(user_id)
        answer = state["answer"]  # what the database holds when the query runs
        if state["during"] is not None:
            during, state["during"] = state["during"], None
            during()
        return answer

    monkeypatch.setattr(live_rights, "read_standing", read)
    return made, state


def test_heartbeats_share_a_recent_reading(reads):
    made, _ = reads
    clock = Clock()
    rights = live_rights.Rights(max_age=1.0, clock=clock)
    assert [rights.standing(7) for _ in range(100)] == [ALLOWED] * 100
    assert rights.standing(8) == ALLOWED
    assert made == [7, 8]
    clock.now += 1.0
    rights.standing(7)
    assert made == [7, 8, 7]


def test_a_user_event_is_read_once_for_all_and_never_from_before_it(reads):
    made, state = reads
    rights = live_rights.Rights(max_age=60.0, clock=Clock())
    rights.standing(7)
    state["answer"] = None  # the event: the user is gone
    assert [rights.standing(7, after_event=41) for _ in range(50)] == [None] * 50
    assert made == [7, 7]
    assert rights.standing(7) is None  # a heartbeat after it, too
    assert rights.standing(7, after_event=40) is None  # an older event's stream
    assert made == [7, 7]


def test_a_reading_begun_before_an_event_was_heard_is_not_kept_for_after_it(reads):
    made, state = reads
    rights = live_rights.Rights(max_age=60.0, clock=Clock())
    seen_during = []

    def event_heard_meanwhile():  # another stream, while the first one's query is under way
        state["answer"] = None
        seen_during.append(rights.standing(7, after_event=41))

    state["during"] = event_heard_meanwhile
    assert rights.standing(7) == ALLOWED  # began before the change
    assert seen_during == [None]  # did not wait for, or take, the older reading
    assert rights.standing(7) is None  # and the older one did not replace the newer
    assert made == [7, 7]


def test_streams_wait_for_a_reading_under_way_rather_than_ask_too(monkeypatch):
    rights = live_rights.Rights(max_age=60.0)
    made, release = [], threading.Event()

    def slow_read(user_id):
        made.append(user_id)
        assert release.wait(15)
        return ALLOWED

    monkeypatch.setattr(live_rights, "read_standing", slow_read)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(rights.standing(7)))
               for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_until(lambda: made, timeout=15, message="the first reading began")
    release.set()
    for thread in threads:
        thread.join(15)
    assert answers == [ALLOWED] * 5 and made == [7]


def test_a_user_event_makes_one_query_for_all_of_a_persons_streams(app, stream_people, make_user):
    _, otto, uma = stream_people
    rita = make_user("reviewer", name="Rita")
    with app.app_context():
        viewer = live_rights.Viewer.of(db.session.get(User, rita.id))
    queries = []

    def count(conn, cursor, statement, *args):
        if "FROM users" in statement:
            queries.append(statement)

    with app.test_request_context():
        bodies = [live_stream(viewer, runtime(app).broker) for _ in range(5)]
        runtime(app).viewer_rights = live_rights.Rights(max_age=60.0)  # no heartbeat reading kept
        with app.app_context():
            engine = db.engine
            sa_event.listen(engine, "before_cursor_execute", count)
            try:
                accounts.change_role(db.session.get(User, uma.id), "requestor", actor=None)
                db.session.commit()
                queries.clear()
                for body in bodies:
                    assert next(body).startswith(": keepalive")  # the event went by; still on
            finally:
                sa_event.remove(engine, "before_cursor_execute", count)
        for body in bodies:
            body.close()
    assert len(queries) == 1, queries
