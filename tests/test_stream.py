"""GET /transactions/stream: server-sent events, resumable, filtered by who is watching."""
import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from sendauth_dashboard.core import event_log
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import SignIn, Transaction, User, utcnow
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.live import wire
from sendauth_dashboard.services.live.broker import LocalBroker
from sendauth_dashboard.services.live.replay import replay
from sendauth_dashboard.services.live.rights import Viewer
from sendauth_dashboard.services.live.slots import slots_of
from sendauth_dashboard.services.live.stream import lifetime, stream
from sendauth_dashboard.services.requests import transactions
from tests.support.helpers import configure_pagerduty, send_request, wait_until
from tests.support.sse import ClientStream, live_stream
from tests.support.web import AuthActions


@pytest.fixture
def app_config():
    return {"SSE_HEARTBEAT_SECONDS": 0.05, "SSE_MAX_SECONDS": 10.0}


def watch(client, url="/transactions/stream", **kwargs):
    return ClientStream(client, url, **kwargs)


def in_thread(work):
    """Do ``work`` in another thread, as another request of the app would."""
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)


def answer(app, public_id, decision="verify"):
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        transactions.answer(t, decision, user=t.user)
        db.session.commit()


def data_of(frame):
    return json.loads(frame.split("data: ", 1)[1])


def test_signed_out_is_a_401_not_a_redirect(client):
    assert client.get("/transactions/stream").status_code == 401


def test_a_member_may_not_watch(client, auth, stream_people):
    auth.login(stream_people[2])
    assert client.get("/transactions/stream").status_code == 403


def test_the_stream_has_the_headers_proxies_and_browsers_need(client, auth, stream_people):
    auth.login(stream_people[0])
    stream = watch(client)
    headers = stream.headers
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    stream.close()


@pytest.mark.both_databases
def test_it_replays_after_the_given_id_then_goes_live(app, client, auth, stream_people):
    hana, _, uma = stream_people
    first = send_request(app, hana, uma)
    second = send_request(app, hana, uma)
    with app.app_context():
        after = event_log.latest_event_id() - 1
    auth.login(hana)
    stream = watch(client, f"/transactions/stream?after={after}")
    stream.read_until(lambda s: len(s.events) == 1)
    assert stream.events[0]["transaction"]["id"] == second
    in_thread(lambda: answer(app, first))
    stream.read_until(lambda s: len(s.events) == 2)
    live = stream.events[1]
    assert (live["kind"], live["transaction"]["id"], live["transaction"]["status"]) == (
        "transaction.verified", first, "verified")
    assert live["text"] == "Uma verified it"
    stream.close()


@pytest.mark.both_databases
def test_a_reconnecting_browser_resumes_from_last_event_id(app, client, auth, stream_people):
    hana, _, uma = stream_people
    ids = [send_request(app, hana, uma) for _ in range(3)]
    auth.login(hana)
    stream = watch(client, "/transactions/stream?after=0")
    stream.read_until(lambda s: len(s.events) == 3)
    stream.close()
    seen = stream.ids[0]
    resumed = watch(client, "/transactions/stream?after=0", headers={"Last-Event-ID": str(seen)})
    resumed.read_until(lambda s: len(s.events) == 2)
    assert [e["transaction"]["id"] for e in resumed.events] == ids[1:]
    resumed.close()


@pytest.mark.both_databases
def test_each_watcher_gets_only_what_their_role_may_see(app, client, auth, stream_people,
                                                        make_user):
    hana, otto, uma = stream_people
    auth.login(hana)
    stream = watch(client, "/transactions/stream?after=0")
    reviewer_client = app.test_client()
    AuthActions(reviewer_client).login(make_user("reviewer"))
    reviewer = watch(reviewer_client, "/transactions/stream?after=0")
    theirs = send_request(app, otto, uma)
    mine = send_request(app, hana, uma)
    with app.app_context():  # an admin's settings change is never on this stream
        configure_pagerduty(app, severity="info")
    reviewer.read_until(lambda s: len(s.events) == 2)
    stream.read_until(lambda s: len(s.events) == 1)
    assert [e["transaction"]["id"] for e in stream.events] == [mine]
    assert [e["transaction"]["id"] for e in reviewer.events] == [theirs, mine]
    stream.read_until(lambda s: len(s.comments) > 3)  # nothing else arrives meanwhile
    assert len(stream.events) == 1
    stream.close()
    reviewer.close()


def test_a_heartbeat_keeps_quiet_streams_open(client, auth, stream_people):
    auth.login(stream_people[0])
    stream = watch(client)
    stream.read_until(lambda s: "keepalive" in s.comments)
    stream.close()


@pytest.mark.both_databases
def test_the_stream_holds_no_database_connection_while_it_waits(app, client, auth, stream_people):
    hana, _, uma = stream_people
    send_request(app, hana, uma)
    auth.login(hana)
    stream = watch(client, "/transactions/stream?after=0")
    stream.read_until(lambda s: len(s.events) == 1 and "keepalive" in s.comments)
    with app.app_context():
        assert db.engine.pool.checkedout() == 0
    stream.close()


def test_streams_end_after_their_lifetime(app, client, auth, stream_people):
    app.config["SSE_MAX_SECONDS"] = 0.3
    auth.login(stream_people[0])
    stream = watch(client)
    stream.read_until(lambda s: s.ended, timeout=15)
    assert stream.comments[0] == "stream open"


@pytest.mark.both_databases
def test_a_slow_watcher_catches_up_from_the_table_and_misses_nothing(app, stream_people):
    hana, _, uma = stream_people
    broker = runtime(app).broker
    broker.queue_size = 2
    viewer = Viewer(hana.id, sees_all=False)
    with app.test_request_context():
        body = live_stream(viewer, broker)  # live, and not reading: its queue of 2 overflows
        sent = []
        in_thread(lambda: sent.extend(send_request(app, hana, uma) for _ in range(10)))
        frames = []
        while len(frames) < 10:
            frame = next(body)
            if frame.startswith("id:"):
                frames.append(data_of(frame))
        body.close()
    assert [f["transaction"]["id"] for f in frames] == sent


def test_a_live_event_is_formatted_once_for_all_its_watchers(app, stream_people, monkeypatch):
    """Serialising the same event again for every watcher was a large part of a fan-out's cost."""
    hana, _, uma = stream_people
    broker = runtime(app).broker
    formatted = []
    real_format = wire.sse_format
    monkeypatch.setattr(wire, "sse_format",
                        lambda m: formatted.append(m["id"]) or real_format(m))
    viewer = Viewer(hana.id, sees_all=False)
    with app.test_request_context():
        bodies = [stream(viewer, 0, broker, heartbeat=0.05, lifetime=5) for _ in range(3)]
        for body in bodies:
            while not next(body).startswith(": keepalive"):
                pass  # live
        in_thread(lambda: send_request(app, hana, uma))
        frames = []
        for body in bodies:
            frames.append(next(f for f in body if f.startswith("id:")))
            body.close()
    assert len(set(frames)) == 1
    assert formatted == [json.loads(frames[0].split("data: ", 1)[1])["id"]]


@pytest.mark.both_databases
def test_an_event_committed_while_the_stream_opens_arrives_once(app, stream_people):
    hana, _, uma = stream_people
    broker = runtime(app).broker
    viewer = Viewer(hana.id, sees_all=False)
    with app.test_request_context():
        body = stream(viewer, 0, broker, heartbeat=0.05, lifetime=30)
        assert next(body).startswith("retry:")  # subscribed; the table is not read yet
        in_thread(lambda: send_request(app, hana, uma))  # in the table AND in the queue
        frames = [next(body) for _ in range(3)]
        body.close()
    data = [f for f in frames if f.startswith("id:")]
    assert len(data) == 1, frames


def test_closing_the_broker_ends_open_streams(app, client, auth, stream_people):
    auth.login(stream_people[0])
    stream = watch(client)
    stream.read_until(lambda s: "stream open" in s.comments)
    runtime(app).broker.close_all()
    stream.read_until(lambda s: s.ended)
    assert runtime(app).broker.subscriber_count == 0


@pytest.mark.both_databases
def test_deliveries_and_answers_reach_the_transactions_page_stream(app, client, auth,
                                                                  stream_people):
    hana, _, uma = stream_people
    public_id = send_request(app, hana, uma)
    with app.app_context():
        after = event_log.latest_event_id()
    auth.login(hana)
    stream = watch(client, f"/transactions/stream?after={after}")
    in_thread(lambda: answer(app, public_id, "deny"))
    stream.read_until(lambda s: len(s.events) == 1)
    message = stream.events[0]
    assert message["transaction"]["status"] == "denied"
    assert set(message["transaction"]) >= {"id", "status", "user", "requestor", "message"}
    assert "token" not in json.dumps(message)
    with app.app_context():
        assert db.session.get(User, uma.id).name == message["transaction"]["user"]
    stream.close()


@pytest.mark.both_databases
def test_a_resync_makes_the_stream_catch_up_with_what_it_never_heard(app, stream_people):
    """When live messages may have been lost (Redis was away), the table has them all."""
    hana, _, uma = stream_people
    broker = runtime(app).broker
    viewer = Viewer(hana.id, sees_all=False)
    with app.test_request_context():
        body = live_stream(viewer, broker)
        runtime(app).broker = LocalBroker()  # nobody listens: committed, never heard
        unheard = send_request(app, hana, uma)
        runtime(app).broker = broker
        broker.resync_all()
        frame = next(f for f in body if f.startswith("id:"))
        body.close()
    assert data_of(frame)["transaction"]["id"] == unheard


@pytest.mark.both_databases
def test_a_request_sent_while_watching_arrives_live(app, stream_people):
    """Not replayed from the table: published after its commit, to a stream already live."""
    hana, _, uma = stream_people
    viewer = Viewer(hana.id, sees_all=False)
    with app.test_request_context():
        body = live_stream(viewer, runtime(app).broker)
        sent = send_request(app, hana, uma)
        frame = next((f for f in body if f.startswith("id:")), None)
        body.close()
    assert frame is not None, "the event never came live"
    assert data_of(frame)["transaction"]["id"] == sent


@pytest.mark.both_databases
def test_events_published_out_of_order_reach_the_watcher_in_id_order(app, stream_people):
    """Processes publish after their commits, each when it gets to it: a watcher may hear of
    event 410 before 409. It still gets 409 first, then 410, none skipped."""
    hana, _, uma = stream_people
    broker = runtime(app).broker
    viewer = Viewer(hana.id, sees_all=False)
    with app.test_request_context():
        body = live_stream(viewer, broker)
        runtime(app).broker = LocalBroker()  # committed now, published below, late
        sent = [send_request(app, hana, uma), send_request(app, hana, uma)]
        runtime(app).broker = broker
        with app.app_context():
            first, second = replay(viewer, 0)
        broker.publish(second)
        broker.publish(first)
        frames = [data_of(next(f for f in body if f.startswith("id:"))) for _ in sent]
        body.close()
    assert [f["transaction"]["id"] for f in frames] == sent
    assert frames[1]["id"] > frames[0]["id"]


@pytest.mark.both_databases
def test_a_rolled_back_event_id_does_not_hold_the_stream_back(app, stream_people):
    """On PostgreSQL an id taken by a transaction that rolled back never commits: the stream
    sends what the table has rather than wait for it."""
    hana, _, uma = stream_people
    viewer = Viewer(hana.id, sees_all=False)
    with app.test_request_context():
        body = live_stream(viewer, runtime(app).broker)
        with app.app_context():
            event_log.record("transaction.created", data={"never": "committed"})
            db.session.flush()
            db.session.rollback()
        sent = send_request(app, hana, uma)
        frame = next((f for f in body if f.startswith("id:")), None)
        body.close()
    assert frame is not None
    assert data_of(frame)["transaction"]["id"] == sent


def test_streams_that_open_together_do_not_all_end_together():
    """After a restart every browser reconnects at once; with one fixed lifetime they would
    all reconnect together again every SSE_MAX_SECONDS, forever."""
    lifetimes = [lifetime(300.0) for _ in range(200)]
    assert all(225.0 <= seconds <= 300.0 for seconds in lifetimes)
    assert max(lifetimes) - min(lifetimes) > 30.0


@pytest.mark.both_databases
@pytest.mark.parametrize("change", ["demoted", "deactivated", "signed out everywhere"])
def test_a_stream_ends_as_soon_as_its_viewer_loses_the_right(app, stream_people, make_user,
                                                              change):
    from sendauth_dashboard.services.people import accounts

    _, otto, uma = stream_people
    reviewer = make_user("reviewer", name="Rita")
    with app.app_context():
        viewer = Viewer.of(db.session.get(User, reviewer.id))
    with app.test_request_context():
        body = live_stream(viewer, runtime(app).broker)
        with app.app_context():
            rita = db.session.get(User, reviewer.id)
            if change == "demoted":
                accounts.change_role(rita, "member", actor=None)
            elif change == "deactivated":
                accounts.set_active(rita, False, actor=None)
            else:
                rita.end_sessions()
                event_log.record("user.signed_out", data={"email": rita.email})
            db.session.commit()
        send_request(app, otto, uma)  # what she may no longer see
        frames = list(body)  # it ends (without the check: after its 30 s, with Otto's news)
    assert not any("Otto" in frame for frame in frames)


@pytest.mark.both_databases
def test_a_heartbeat_ends_the_stream_of_a_viewer_who_lost_the_right(app, stream_people):
    hana, _, _ = stream_people
    with app.app_context():
        viewer = Viewer.of(db.session.get(User, hana.id))
        db.session.get(User, hana.id).active = False  # no event: only the heartbeat can tell
        db.session.commit()
    with app.test_request_context():
        frames = list(stream(viewer, 0, runtime(app).broker, heartbeat=0.05,
                                     lifetime=3600))
    assert "keepalive" not in "".join(frames)


@pytest.mark.parametrize("ending", ["signed out", "password changed", "expired"])
def test_a_copied_sessions_open_stream_ends_within_a_heartbeat_of_the_session_ending(
        app, stream_people, ending):
    """The owner signs out (or changes the password): a copy of their cookie, with a stream
    already open, hears nothing more. Heartbeats every 0.05 s; readings of rights last 1 s."""
    hana, otto, uma = stream_people
    owner = AuthActions(app.test_client())
    owner.login(hana)
    thief = app.test_client()
    thief.set_cookie("session", owner.client.get_cookie("session").value)
    stream = watch(thief)
    stream.read_until(lambda s: "stream open" in s.comments)
    if ending == "signed out":
        owner.logout()
    elif ending == "expired":
        with app.app_context():
            db.session.query(SignIn).update({"created_at": utcnow() - timedelta(days=31)})
            db.session.commit()
    else:
        with app.app_context():
            db.session.get(User, hana.id).end_sessions()  # as services.people.passwords does
            db.session.commit()
    ended_by = time.monotonic() + 3  # a heartbeat, and the 1 s a reading of rights is kept
    with pytest.raises(AssertionError, match="ended"):
        stream.read_until(lambda s: False, timeout=10)
    assert time.monotonic() < ended_by
    assert thief.get("/transactions/stream").status_code == 401, "nor may it open another"


def test_streams_are_capped_per_user_and_per_process_and_other_pages_still_answer(
        app, client, auth, stream_people, make_user):
    app.config.update(STREAMS_PER_USER=2, STREAMS_PER_PROCESS=3)
    hana, otto, _ = stream_people
    auth.login(hana)
    mine = [watch(client) for _ in range(2)]
    assert [s.status_code for s in mine] == [200, 200]
    refused = client.get("/transactions/stream")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert "You have 2 live pages open already" in refused.text
    others = app.test_client()
    AuthActions(others).login(otto)
    theirs = watch(others)
    assert theirs.status_code == 200, "one user's streams do not use up another's"
    full = app.test_client()
    AuthActions(full).login(make_user("reviewer"))
    response = full.get("/transactions/stream")
    assert response.status_code == 429 and "Too many live streams" in response.text
    assert app.test_client().get("/login").status_code == 200
    assert app.test_client().get("/healthz").status_code == 200
    mine[0].close()
    wait_until(lambda: slots_of(app).total == 2, message="the closed stream's slot back")
    again = watch(client)
    assert again.status_code == 200, "a closed stream gives its slot back"
    for opened in (mine[1], theirs, again):
        opened.close()
    wait_until(lambda: slots_of(app).total == 0, message="every slot back")


def test_a_stream_that_ended_gives_its_slot_back_at_once(app, client, auth, stream_people):
    app.config.update(STREAMS_PER_USER=1, SSE_MAX_SECONDS=0.0)
    auth.login(stream_people[0])
    for _ in range(3):  # read to the end, never closed: as a client that just stops reading
        response = client.get("/transactions/stream")
        assert response.status_code == 200
        assert response.get_data(as_text=True).startswith("retry:")


def test_a_live_row_and_timeline_line_are_the_ones_the_pages_draw(app, client, auth, stream_people):
    """Drawn once: the markup an event carries is the page's own, from the same template."""
    hana, _, uma = stream_people
    auth.login(hana)
    stream = watch(client, "/transactions/stream?after=0")
    stream.read_until(lambda s: "stream open" in s.comments)
    public_id = send_request(app, hana, uma, message="Reset " + "x" * 120)  # truncated
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        transactions.cancel(t, actor=t.requestor)
        db.session.commit()
    stream.read_until(lambda s: "transaction.cancelled" in [e["kind"] for e in s.events])
    stream.close()
    cancelled = stream.events[-1]
    listing = client.get("/transactions/").text
    assert cancelled["html"]["row"] in listing
    page = client.get(f"/transactions/{public_id}").text
    assert all(e["html"]["line"] in page for e in stream.events)


def test_a_channels_retries_after_its_first_failure_carry_no_timeline_line(app, stream_people):
    """The rule of delivery_report.worth_a_line, applied to each event as it is recorded."""
    from sendauth_dashboard.core import event_log as log
    from sendauth_dashboard.models import Event
    from sendauth_dashboard.services.live.messages import message_for

    hana, _, uma = stream_people
    public_id = send_request(app, hana, uma)
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        for attempt, channel in ((1, "pagerduty"), (2, "pagerduty"), (1, "email")):
            log.record("delivery.retrying", transaction=t,
                       data={"channel": channel, "attempt": attempt, "error": "HTTP 500"})
        db.session.commit()
        retries = db.session.scalars(select(Event).where(Event.kind == "delivery.retrying")
                                     .order_by(Event.id)).all()
        lines = [message_for(event)["html"]["line"] for event in retries]
    assert [line is not None for line in lines] == [True, False, True]


def test_an_event_read_again_from_the_table_is_drawn_once_per_process(
        app, stream_people, monkeypatch):
    """Thousands of streams replaying the same events after a restart draw each once."""
    from sendauth_dashboard.models import Event
    from sendauth_dashboard.services.live import messages

    hana, _, uma = stream_people
    send_request(app, hana, uma)
    drawn = []
    real_line = messages._worth_a_line
    monkeypatch.setattr(messages, "_worth_a_line", lambda e: drawn.append(e.id) or real_line(e))
    with app.app_context():
        event = db.session.scalars(select(Event).where(Event.kind == "transaction.created")).one()
        first, again = messages.message_for(event), messages.message_for(event)
    assert drawn == [event.id] and first["html"] == again["html"]
