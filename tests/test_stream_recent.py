"""services.live.recent: streams that resume from among the recent events catch up from the
process's window of them, read from the table once for all, never one query each; and nothing
is missed or repeated at the window's edges."""
import json
import threading

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from sendauth_dashboard.core import event_log
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, User
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.live import replay, wire
from sendauth_dashboard.services.live.recent import RecentEvents
from sendauth_dashboard.services.live.rights import Viewer
from sendauth_dashboard.services.live.stream import stream
from sendauth_dashboard.services.people import accounts
from tests.support.helpers import send_request
from tests.support.sse import ClientStream, Frames, live_stream
from tests.support.web import AuthActions


def message(event_id, kind="transaction.created"):
    return {"id": event_id, "kind": kind}


def heard(window, *ids):
    for event_id in ids:
        window.heard(message(event_id))
    return window


def ids(found):
    messages, now_at = found
    return [m["id"] for m in messages], now_at


def no_table(*args):
    raise AssertionError("the table was read")


class Table:
    """The events table as the window reads it: ids up to ``newest``, every read counted."""

    def __init__(self, newest):
        self.newest = newest
        self.reads = []

    def read(self, after_id, before_id):
        self.reads.append((after_id, before_id))
        return [message(n) for n in range(after_id + 1, min(before_id, self.newest + 1))]

    def latest(self):
        return self.newest


def test_a_stream_resuming_inside_the_window_reads_nothing_from_the_table():
    window = heard(RecentEvents(), 1, 2, 3, 4, 5)
    assert ids(window.since(2, no_table, no_table)) == ([3, 4, 5], 5)
    assert ids(window.since(5, no_table, no_table)) == ([], 5)


def test_streams_resuming_from_before_the_window_share_one_read_of_the_table():
    table = Table(newest=12)
    window = heard(RecentEvents(), 10, 11, 12)  # covers (9, 12]
    found = []
    readers = [threading.Thread(target=lambda: found.append(ids(window.since(6, table.read,
                                                                              table.latest))))
               for _ in range(20)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(10)
    assert found == [([7, 8, 9, 10, 11, 12], 12)] * 20
    assert table.reads == [(6, 10)], "one read, up to the window's first event"


def test_after_a_restart_the_empty_window_reads_up_to_the_newest_then_grows_live():
    table = Table(newest=8)
    window = RecentEvents()
    assert ids(window.since(5, table.read, table.latest)) == ([6, 7, 8], 8)
    heard(window, 9)
    assert ids(window.since(5, no_table, no_table)) == ([6, 7, 8, 9], 9)
    assert table.reads == [(5, 9)]


def test_a_resume_older_than_the_window_reads_the_table_itself():
    window = heard(RecentEvents(size=10), *range(100, 106))
    assert window.since(50, no_table, no_table) is None


def test_the_window_never_claims_an_id_it_did_not_hear():
    """A message that is not the next id starts the window afresh: the ids between may yet
    arrive (published late) or were never heard here."""
    window = heard(RecentEvents(), 1, 2, 3, 5)
    assert window.covered(3) is None, "4 may exist: not covered"
    assert ids(window.covered(4)) == ([5], 5)
    window.heard(message(4))  # late: older than the window, ignored
    assert ids(window.covered(4)) == ([5], 5)
    window.heard(message(7), after=5)  # the broker read the table: nothing between
    assert ids(window.covered(4)) == ([5, 7], 7)


def test_a_full_window_forgets_its_oldest_and_covers_from_there():
    window = heard(RecentEvents(size=3), 1, 2, 3, 4, 5)
    assert window.covered(1) is None
    assert ids(window.covered(2)) == ([3, 4, 5], 5)


def test_a_resync_forgets_the_window():
    table = Table(newest=7)
    window = heard(RecentEvents(), 1, 2, 3)
    window.forget()  # live messages 4..7 were lost while Redis was away
    assert ids(window.since(3, table.read, table.latest)) == ([4, 5, 6, 7], 7)


@pytest.fixture
def app_config():
    return {"SSE_HEARTBEAT_SECONDS": 0.05, "SSE_MAX_SECONDS": 10.0}


def created_ids(frames):
    return [frame.id for frame in Frames().feed("".join(frames).encode()) if frame.id]


def transaction_event_ids(app, after_id):
    with app.app_context():
        return [str(n) for n in db.session.scalars(
            select(Event.id).where(Event.id > after_id, Event.transaction_id.is_not(None))
            .order_by(Event.id))]


def catch_up_frames(app, viewer, after_id):
    """What a stream resuming from ``after_id`` sends before it waits."""
    with app.test_request_context():
        body = stream(viewer, after_id, runtime(app).broker, heartbeat=0.05, lifetime=30)
        frames = []
        for frame in body:
            if frame.startswith(": keepalive"):
                break
            frames.append(frame)
        body.close()
    return frames


def test_a_resuming_stream_catches_up_from_the_window_without_the_table(
        app, stream_people, monkeypatch):
    hana, _, uma = stream_people
    with app.app_context():
        resume_from = event_log.latest_event_id()
    for n in range(3):
        send_request(app, hana, uma, message=f"sent while away {n}")
    monkeypatch.setattr(replay, "events_between", no_table)
    monkeypatch.setattr(replay, "_from_table", no_table)
    frames = catch_up_frames(app, Viewer(hana.id, sees_all=False), resume_from)
    assert created_ids(frames) == transaction_event_ids(app, resume_from)
    assert len(created_ids(frames)) >= 3


def test_a_stream_resuming_from_before_the_window_reads_the_table_and_misses_nothing(
        app, stream_people, monkeypatch):
    hana, _, uma = stream_people
    monkeypatch.setattr(runtime(app).broker.recent, "size", 2)
    with app.app_context():
        resume_from = event_log.latest_event_id()
    for n in range(4):
        send_request(app, hana, uma, message=f"sent while away {n}")
    read_alone = []
    table = replay._from_table
    monkeypatch.setattr(replay, "_from_table",
                        lambda *args: read_alone.append(args) or (yield from table(*args)))
    frames = catch_up_frames(app, Viewer(hana.id, sees_all=False), resume_from)
    assert created_ids(frames) == transaction_event_ids(app, resume_from)
    assert read_alone, "beyond the window: the stream read the table itself"


def test_a_user_event_among_what_a_stream_missed_still_ends_it(app, stream_people, make_user):
    """Rita, a reviewer, was deactivated while her browser was away: the window holds the
    user event, and her stream, resuming from before it, sends her nothing more."""
    _, otto, uma = stream_people
    rita = make_user("reviewer", name="Rita")
    with app.app_context():
        resume_from = event_log.latest_event_id()
        viewer = Viewer.of(db.session.get(User, rita.id))
        accounts.set_active(db.session.get(User, rita.id), False, actor=None)
        db.session.commit()
    send_request(app, otto, uma, message="what she may no longer see")
    assert runtime(app).broker.recent.covered(resume_from) is not None
    assert catch_up_frames(app, viewer, resume_from) == [wire.opening()]


def test_a_restart_tells_each_browser_its_own_time_to_come_back(app, client, auth,
                                                               stream_people):
    auth.login(stream_people[0])
    watching = ClientStream(client, "/transactions/stream")
    watching.read_until(lambda s: "stream open" in s.comments)
    runtime(app).broker.close_all()
    watching.read_until(lambda s: s.ended)
    low, high = wire.SHUTDOWN_RETRY_MS
    assert low <= int(watching.frames[-1].retry) < high
    assert {wire.goodbye() for _ in range(50)} != {wire.goodbye()}, "drawn for each stream"


def test_opening_a_stream_asks_the_database_nothing_once_the_person_is_read(
        app, client, auth, stream_people, monkeypatch):
    """The person's rights are read once for all their streams, and what they missed comes
    from the window; a session begun after that reading is read afresh, not refused."""
    hana = stream_people[0]
    monkeypatch.setattr(runtime(app).viewer_rights, "max_age", 600.0)
    auth.login(hana)
    first = ClientStream(client, "/transactions/stream")
    first.read_until(lambda s: "keepalive" in s.comments)
    first.close()
    with app.app_context():
        engine = db.engine
    statements = []

    def note(connection, cursor, statement, *args):
        statements.append(statement)

    sa_event.listen(engine, "before_cursor_execute", note)
    try:
        second = ClientStream(client, "/transactions/stream")
        second.read_until(lambda s: "keepalive" in s.comments)
    finally:
        sa_event.remove(engine, "before_cursor_execute", note)
    second.close()
    assert statements == []
    elsewhere = AuthActions(app.test_client())
    elsewhere.login(hana)  # a new signed-in session, after the shared reading
    third = ClientStream(elsewhere.client, "/transactions/stream")
    assert third.status_code == 200
    third.close()


def test_after_redis_comes_back_every_stream_catches_up_from_one_read(
        app, stream_people, monkeypatch):
    """Events published while Redis was away reached no stream: when the listener is back,
    every stream catches up, all of them from one read of the table, none asking the database
    about its viewer on its own (at 5,000 streams, 5,000 queries stalled the sends)."""
    from sendauth_dashboard.services.live import rights

    hana, _, uma = stream_people
    broker = runtime(app).broker
    viewer = Viewer(hana.id, sees_all=False)
    with app.test_request_context():
        bodies = [live_stream(viewer, broker) for _ in range(5)]
        monkeypatch.setattr(broker, "publish", lambda message: None)  # Redis away
        missed = [send_request(app, hana, uma, message=f"while away {n}") for n in range(2)]
        reads, standings = [], []
        between = replay.events_between
        monkeypatch.setattr(replay, "events_between",
                            lambda *args: reads.append(args) or between(*args))
        monkeypatch.setattr(rights, "read_standing",
                            lambda user_id: standings.append(user_id) or (True, True, False,
                                                                          None, frozenset()))
        broker.resync_all()
        for body in bodies:
            caught_up = []
            while len(caught_up) < len(missed):
                frame = next(body)
                if frame.startswith("id:"):
                    caught_up.append(json.loads(frame.split("data: ", 1)[1]))
            body.close()
            assert [m["transaction"]["id"] for m in caught_up] == missed
    assert len(reads) == 1
    assert standings == []
