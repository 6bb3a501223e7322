"""The durable outbox: every incident arrives, exactly once, whatever PagerDuty does meanwhile."""
import os
import random
import threading
from datetime import timedelta

import click
import pytest
from sqlalchemy import func, select, update

from sendauth_dashboard.channels import integration
from sendauth_dashboard.channels.http import SendResult
from sendauth_dashboard.config import DEFAULTS
from sendauth_dashboard.core.secrets import secret_box_for
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, IntegrationStatus, Transaction, User, utcnow
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.outbox import deliveries
from sendauth_dashboard.services.outbox.deliveries import backoff_seconds
from sendauth_dashboard.services.outbox.dispatcher import Dispatcher, start_thread
from sendauth_dashboard.services.requests import transactions
from tests.support.helpers import (
    TEST_KEY,
    configure_email,
    configure_pagerduty,
    dispatch,
    send_request,
    time_passes,
    wait_until,
)

from .fakes.pagerduty import Answer


@pytest.fixture
def app_config(fake_pagerduty):
    # A first backoff of 60 s or more: a retry comes due only when a test says time passes.
    return {"PAGERDUTY_EVENTS_URL": fake_pagerduty.url, "PAGERDUTY_READ_TIMEOUT": 2.0,
            "PAGERDUTY_CONNECT_TIMEOUT": 5.0, "DELIVERY_BACKOFF_BASE_SECONDS": 120.0}


@pytest.fixture
def people(app, make_user):
    configure_pagerduty(app)
    return make_user("requestor", name="Hana Helpdesk"), make_user("member", name="Uma User",
                                                                   notify_pagerduty=True)


def delivery_rows(app):
    with app.app_context():
        return db.session.scalars(select(Delivery).order_by(Delivery.id)).all()


def only_delivery(app):
    (d,) = delivery_rows(app)
    return d


def event_kinds(app):
    with app.app_context():
        return [e.kind for e in db.session.scalars(select(Event).where(
            Event.transaction_id.is_not(None)).order_by(Event.id))]


@pytest.mark.both_databases
def test_sending_queues_one_delivery_with_the_transaction_and_its_event(app, people):
    send_request(app, *people)
    d = only_delivery(app)
    assert (d.channel, d.status, d.attempts) == ("pagerduty", "queued", 0)
    assert d.link_ciphertext and "/authenticate/" not in d.link_ciphertext
    assert event_kinds(app) == ["transaction.created"]


def test_a_user_with_pagerduty_off_is_refused_and_nothing_is_written(app, make_user):
    configure_pagerduty(app)
    requestor, user = make_user("requestor"), make_user("member", name="Ola Off")
    with pytest.raises(transactions.TransactionError) as info:
        send_request(app, requestor, user)
    assert str(info.value) == (
        "No channel can reach Ola Off. PagerDuty: off in their messaging preferences; "
        "Email: the email integration has no SMTP host or from address; "
        "SMS: off in their messaging preferences; "
        "Slack: off in their messaging preferences.")
    with app.app_context():
        assert db.session.scalar(select(func.count(Transaction.id))) == 0
        assert db.session.scalar(select(func.count(Delivery.id))) == 0


def test_pagerduty_disabled_means_no_route(app, make_user):
    configure_pagerduty(app, enabled=False)
    with pytest.raises(transactions.TransactionError,
                       match="the PagerDuty integration is disabled"):
        send_request(app, make_user("requestor"), make_user("member", notify_pagerduty=True))


@pytest.mark.both_databases
def test_one_incident_with_every_field_and_the_link(app, people, fake_pagerduty):
    public_id = send_request(app, *people, message="Confirm the laptop swap", context="INC-1")
    assert dispatch(app) == ["sent"]
    (event,) = fake_pagerduty.accepted
    assert event["routing_key"] == TEST_KEY
    assert event["dedup_key"] == public_id
    assert event["payload"]["summary"] == "Authentication request from Hana Helpdesk"
    details = event["payload"]["custom_details"]
    assert details["message"] == "Confirm the laptop swap" and details["context"] == "INC-1"
    assert details["transaction_id"] == public_id
    link = event["links"][0]["href"]
    assert link.startswith("http://sendauth.test/authenticate/")
    with app.app_context():
        token = link.rsplit("/", 1)[1]
        assert transactions.find_by_token(token).public_id == public_id
    d = only_delivery(app)
    assert (d.status, d.attempts, d.last_http_status, d.external_id) == ("sent", 1, 202, public_id)
    assert d.link_ciphertext is None
    assert event_kinds(app) == ["transaction.created", "delivery.sent"]
    with app.app_context():
        assert integration.status_view("pagerduty").state == "success"


@pytest.mark.both_databases
def test_a_400_fails_at_once_with_pagerdutys_text(app, people, fake_pagerduty):
    send_request(app, *people)
    fake_pagerduty.answer_next(Answer.invalid_routing_key())
    assert dispatch(app) == ["failed"]
    d = only_delivery(app)
    assert (d.status, d.attempts, d.last_error) == ("failed", 1, "HTTP 400: Invalid routing key")
    time_passes(app)
    assert dispatch(app) == []
    with app.app_context():
        status = integration.status_view("pagerduty")
        assert (status.state, status.error) == ("error", "HTTP 400: Invalid routing key")


@pytest.mark.both_databases
def test_500s_are_retried_until_pagerduty_recovers_then_one_incident(app, people, fake_pagerduty):
    send_request(app, *people)
    fake_pagerduty.answer_always(Answer.server_error())
    assert dispatch(app) == ["retrying"]
    d = only_delivery(app)
    assert d.status == "queued" and d.next_attempt_at > utcnow()
    with app.app_context():
        assert integration.status_view("pagerduty").error == "HTTP 500: Internal Server Error"
    time_passes(app)
    assert dispatch(app) == ["retrying"]
    fake_pagerduty.answer_normally()
    time_passes(app)
    assert dispatch(app) == ["sent"]
    assert len(fake_pagerduty.incidents) == 1
    assert only_delivery(app).attempts == 3
    with app.app_context():
        assert integration.status_view("pagerduty").state == "success"
    assert event_kinds(app) == ["transaction.created", "delivery.retrying", "delivery.retrying",
                                "delivery.sent"]


@pytest.mark.both_databases
def test_a_lost_answer_is_sent_again_and_pagerduty_keeps_one_incident(app, people, fake_pagerduty):
    send_request(app, *people)
    fake_pagerduty.answer_next(Answer.slow(4.0))  # accepted, but after our read timeout
    assert dispatch(app) == ["retrying"]
    time_passes(app)
    assert dispatch(app) == ["sent"]
    fake_pagerduty.wait_for(lambda fake: len(fake.accepted) == 2)
    assert len(fake_pagerduty.incidents) == 1


@pytest.mark.both_databases
def test_connection_refused_then_recovered(app, people, fake_pagerduty):
    send_request(app, *people)
    fake_pagerduty.stop()
    assert dispatch(app) == ["retrying"]
    assert "Could not connect" in only_delivery(app).last_error
    fake_pagerduty.restart()
    time_passes(app)
    assert dispatch(app) == ["sent"]
    assert len(fake_pagerduty.incidents) == 1


@pytest.mark.both_databases
def test_retries_give_up_after_the_configured_attempts(app, people, fake_pagerduty):
    app.config["DELIVERY_MAX_ATTEMPTS"] = 2
    send_request(app, *people)
    fake_pagerduty.answer_always(Answer.rate_limited())
    assert dispatch(app) == ["retrying"]
    assert channel_outcome(app) == "retrying"  # late, not failing: amber on home (issue 31)
    time_passes(app)
    assert dispatch(app) == ["failed"]
    assert channel_outcome(app) == "error"
    d = only_delivery(app)
    assert d.status == "failed"
    assert d.last_error.startswith("Gave up after 2 attempts. Last error: HTTP 429:")


def channel_outcome(app, channel="pagerduty"):
    with app.app_context():
        return db.session.get(IntegrationStatus, channel).last_outcome


@pytest.mark.both_databases
def test_retries_stop_once_the_transaction_is_no_longer_pending(app, people, fake_pagerduty):
    public_id = send_request(app, *people)
    fake_pagerduty.answer_next(Answer.server_error())
    assert dispatch(app) == ["retrying"]
    with app.app_context():
        t = db.session.scalar(select(Transaction).where(Transaction.public_id == public_id))
        transactions.cancel(t, actor=t.requestor)
        db.session.commit()
    time_passes(app)
    assert dispatch(app) == []
    d = only_delivery(app)
    assert (d.status, d.link_ciphertext) == ("cancelled", None)
    assert len(fake_pagerduty.received) == 1


@pytest.mark.both_databases
def test_disabling_pagerduty_stops_queued_incidents(app, people, fake_pagerduty):
    send_request(app, *people)
    configure_pagerduty(app, key=None, enabled=False)
    assert dispatch(app) == ["cancelled"]
    assert fake_pagerduty.received == []
    assert only_delivery(app).last_error == "Not sent: the PagerDuty integration is disabled."


@pytest.mark.both_databases
def test_a_claim_whose_dispatcher_died_is_reclaimed_after_its_lease(app, people, fake_pagerduty):
    send_request(app, *people)
    now = utcnow()
    with app.app_context():
        assert len(deliveries.claim("dead", 10, now=now, lease_seconds=60)) == 1
        assert deliveries.claim("alive", 10, now=now + timedelta(seconds=30)) == []
        (reclaimed,) = deliveries.claim("alive", 10, now=now + timedelta(seconds=61))
        assert deliveries.attempt(reclaimed, "alive") == "sent"
        # The dead dispatcher's late answer does not overwrite the record.
        late = SendResult("accepted", 202, external_id="x")
        assert deliveries.record_result(reclaimed, "dead", late, app.config) == "lost"
    assert only_delivery(app).attempts == 1
    assert len(fake_pagerduty.incidents) == 1


@pytest.mark.both_databases
def test_concurrent_dispatchers_claim_each_delivery_once(app, make_user):
    configure_pagerduty(app)
    requestor = make_user("requestor")
    for _ in range(40):
        send_request(app, requestor, make_user("member", notify_pagerduty=True))
    claimed, batches, barrier = [], [], threading.Barrier(4)

    def claimer(name):
        barrier.wait()
        with app.app_context():
            while ids := deliveries.claim(name, 3):
                claimed.extend(ids)
                batches.append(len(ids))

    threads = [threading.Thread(target=claimer, args=(f"d{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(claimed) == sorted(d.id for d in delivery_rows(app))
    assert max(batches) <= 3, "never more than asked for"


@pytest.mark.both_databases
def test_the_dispatcher_thread_sends_as_soon_as_a_request_is_queued(app, people, fake_pagerduty):
    app.config["DISPATCHER"] = "thread"
    app.config["DISPATCHER_IDLE_SECONDS"] = 30.0  # so only the wake-up can explain a quick send
    dispatcher = start_thread(app)
    try:
        send_request(app, *people)  # its commit wakes the dispatcher (core.after_commit)
        fake_pagerduty.wait_for(lambda fake: len(fake.incidents) == 1, timeout=15)
    finally:
        dispatcher.stop(timeout=5)
    assert not dispatcher.running


def test_unit_tests_start_no_dispatcher(app, client):
    client.get("/healthz")
    assert runtime(app).dispatcher is None


def test_requests_never_start_a_dispatcher(app, client):
    """Only what starts a serving process starts one (``serve``), never a request."""
    app.config["DISPATCHER"] = "thread"
    client.get("/healthz")
    assert runtime(app).dispatcher is None


@pytest.mark.parametrize(("command", "reload", "reloader_child", "serves"), [
    (None, None, False, True),  # a gunicorn worker: no click command around it
    ("run", False, False, True),  # flask run
    ("run", True, False, False),  # flask run --reload: the parent only watches the files
    ("run", True, True, True),  # ... and its child serves
    ("worker", None, False, False),  # flask worker runs its own dispatcher
    ("db", None, False, False),  # any other command
])
def test_serve_starts_the_dispatcher_only_in_a_process_that_serves(
        app, monkeypatch, command, reload, reloader_child, serves):
    from flask.cli import FlaskGroup, run_command

    import sendauth_dashboard
    from sendauth_dashboard import cli

    started = []
    monkeypatch.setattr(sendauth_dashboard, "start_thread", started.append)
    if reloader_child:
        monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    else:
        monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    chosen = {"run": run_command, "worker": cli.worker_command,
              "db": FlaskGroup(name="db")}.get(command)
    if chosen is None:
        sendauth_dashboard.serve(app)
    else:
        with click.Context(chosen, info_name=command) as context:
            context.params["reload"] = reload
            sendauth_dashboard.serve(app)
    assert started == ([app] if serves else [])


BACKOFF = {k: DEFAULTS[k] for k in DEFAULTS
           if k.startswith("DELIVERY_BACKOFF") or k == "DELIVERY_RATE_LIMITED_FLOOR_SECONDS"}


@pytest.mark.parametrize("attempts", range(1, 12))
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempts):
    config = BACKOFF
    ceiling = min(config["DELIVERY_BACKOFF_CAP_SECONDS"],
                  config["DELIVERY_BACKOFF_BASE_SECONDS"] * 2 ** (attempts - 1))
    rng = random.Random(attempts)
    delays = [backoff_seconds(attempts, SendResult("retryable", 500), config, rng)
              for _ in range(50)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_backoff_honours_retry_after_and_waits_longer_on_429():
    config = BACKOFF
    assert backoff_seconds(1, SendResult("retryable", 429), config) >= 10
    assert backoff_seconds(1, SendResult("retryable", 503, retry_after=120), config) >= 120
    quicker = {**config, "DELIVERY_RATE_LIMITED_FLOOR_SECONDS": 0.5}
    assert 0.5 <= backoff_seconds(1, SendResult("retryable", 429), quicker, random.Random(1)) < 10


@pytest.mark.both_databases
def test_a_key_that_cannot_be_decrypted_fails_visibly_instead_of_retrying(app, people,
                                                                         fake_pagerduty):
    send_request(app, *people)
    runtime(app).secret_box = secret_box_for({"SECRET_KEY": "a different secret key"})
    assert dispatch(app) == ["failed"]
    assert fake_pagerduty.received == []
    assert "cannot be decrypted" in only_delivery(app).last_error
    with app.app_context():
        status = integration.status_view("pagerduty")
    assert status.state == "error" and "Enter it again" in status.error


@pytest.mark.both_databases
def test_a_name_that_breaks_the_email_fails_the_delivery_with_an_event(app, make_user,
                                                                       fake_smtp):
    # Written before names were checked (or straight into the database): the email cannot be
    # built, and the delivery must not stay "sending" with nobody told.
    configure_email(app, fake_smtp.port)
    requestor = make_user("requestor", name="Hana Helpdesk")
    public_id = send_request(app, requestor, make_user("member", email="uma@example.com"))
    with app.app_context():
        db.session.execute(update(User).where(User.id == requestor.id)
                           .values(name="Hana\r\nBcc: everyone@example.com"))
        db.session.commit()
    assert dispatch(app) == ["failed"]
    d = only_delivery(app)
    assert (d.status, d.attempts, d.link_ciphertext) == ("failed", 1, None)
    assert d.last_error.startswith("The email could not be written: ")
    with app.app_context():
        (event,) = db.session.scalars(select(Event).where(Event.kind == "delivery.failed"))
        assert event.transaction.public_id == public_id
        assert event.data["error"] == d.last_error
    assert fake_smtp.received == []
    time_passes(app)
    assert dispatch(app) == []


@pytest.mark.both_databases
def test_an_unexpected_error_in_the_dispatcher_thread_is_recorded_too(app, people,
                                                                      monkeypatch):
    send_request(app, *people)

    def broken(instance, prepared):
        raise RuntimeError("a bug")

    monkeypatch.setattr(deliveries.channels, "send", broken)
    dispatcher = Dispatcher(app, name="threaded")
    dispatcher.start()
    try:
        wait_until(lambda: only_delivery(app).status == "failed", timeout=10,
                   message="the delivery recorded as failed")
    finally:
        dispatcher.stop(timeout=10)
    assert "(RuntimeError)" in only_delivery(app).last_error
    assert "delivery.failed" in event_kinds(app)


@pytest.mark.both_databases
def test_a_send_slower_than_its_lease_is_not_claimed_again_by_its_own_dispatcher(
        app, people, fake_pagerduty, monkeypatch):
    # The flaky fault test's double trigger: a delivery still being sent when its lease ran
    # out was claimed again by the same dispatcher and sent a second time.
    app.config["DELIVERY_LEASE_SECONDS"] = 0.05
    send_request(app, *people)
    sending, release = threading.Event(), threading.Event()
    real_send = deliveries.channels.send

    def slow_send(instance, prepared):
        sending.set()
        release.wait(30)
        return real_send(instance, prepared)

    monkeypatch.setattr(deliveries.channels, "send", slow_send)
    dispatcher = Dispatcher(app, name="slow")
    dispatcher.start()
    try:
        assert sending.wait(10)
        wait_until(lambda: only_delivery(app).lease_expires_at < utcnow(), timeout=10,
                   message="the lease ran out during the send")
        with app.app_context():
            assert dispatcher.claim_within_limits(8) == []
    finally:
        release.set()
        wait_until(lambda: only_delivery(app).status == "sent", timeout=10,
                   message="the delivery recorded as sent")
        dispatcher.stop(timeout=10)
    assert len(fake_pagerduty.received) == 1


@pytest.mark.both_databases
def test_the_lease_counts_from_the_send_not_from_the_claim(app, people, fake_pagerduty,
                                                            monkeypatch):
    send_request(app, *people)
    seen = []
    real_send = deliveries.channels.send

    def send_and_look(instance, prepared):
        seen.append(only_delivery(app).lease_expires_at - utcnow())
        return real_send(instance, prepared)

    monkeypatch.setattr(deliveries.channels, "send", send_and_look)
    assert app.config["DELIVERY_LEASE_SECONDS"] == 60
    with app.app_context():
        # As if the claim had been made 55 s ago: the send would start with 5 s of lease.
        (delivery_id,) = deliveries.claim("d", 10, lease_seconds=5)
        assert deliveries.attempt(delivery_id, "d") == "sent"
    assert seen[0] > timedelta(seconds=30), "a fresh lease for the send, not 5 s left"



@pytest.mark.both_databases
def test_an_outcome_the_database_cannot_take_now_is_written_later_never_sent_again(
        app, people, fake_pagerduty, monkeypatch):
    """The provider accepted the message, then the database failed for a moment (restarting,
    say): the dispatcher writes the outcome again instead of sending again once the lease runs
    out (which sent SMS and Slack messages twice after PostgreSQL crashed)."""
    from sqlalchemy.exc import OperationalError

    send_request(app, *people)
    real, failures = deliveries.record_result, []

    def record_result(*args):
        if len(failures) < 2:
            failures.append("down")
            raise OperationalError("UPDATE deliveries", {}, Exception("server closed the "
                                                                      "connection unexpectedly"))
        return real(*args)

    monkeypatch.setattr(deliveries, "record_result", record_result)
    assert dispatch(app) == ["sent"]
    assert failures == ["down", "down"]
    time_passes(app)  # past the lease: a delivery left "sending" would be claimed again
    assert dispatch(app) == []
    assert len(fake_pagerduty.accepted) == 1, "sent once"
    d = only_delivery(app)
    assert (d.status, d.attempts) == ("sent", 1)
    assert event_kinds(app).count("delivery.sent") == 1


@pytest.mark.both_databases
def test_a_dispatcher_starting_takes_back_at_once_what_a_dead_one_held(app, people,
                                                                       fake_pagerduty):
    """A dispatcher killed mid-send held its deliveries until their lease ran out (a minute
    in which nothing was sent). One that starts takes back at once what a dispatcher of this
    host held whose process has ended, saying the outcome is unknown; a live one's it leaves."""
    import socket
    import subprocess
    import sys

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = f"{socket.gethostname()}:{int(ended.stdout)}:7f00"
    alive = f"{socket.gethostname()}:{os.getpid()}:7f01"
    for owner in (dead, alive):
        send_request(app, *people)
        with app.app_context():
            db.session.execute(update(Delivery).where(Delivery.status == "queued").values(
                status="sending", claimed_by=owner,
                lease_expires_at=utcnow() + timedelta(seconds=60)))
            db.session.commit()
    assert dispatch(app) == ["sent"], "the dead dispatcher's, at once; not the live one's"
    rows = delivery_rows(app)
    assert [(d.status, d.claimed_by) for d in rows] == [("sent", None), ("sending", alive)]
    with app.app_context():
        retried = db.session.scalar(select(Event).where(Event.kind == "delivery.retrying"))
        assert "whether the provider got it is unknown" in retried.data["error"]
    assert len(fake_pagerduty.accepted) == 1


def test_a_dispatcher_whose_process_is_a_zombie_is_dead():
    """A killed gunicorn worker whose master died with it waits, a zombie, for PID 1 to
    collect it (in a container, perhaps never); signal 0 still reaches it. Its deliveries
    are taken back all the same."""
    import subprocess
    import sys
    from pathlib import Path

    from sendauth_dashboard.services.outbox.loop import process_alive as _process_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    try:
        wait_until(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", timeout=10,
                   message="the child ended, not yet collected")
        os.kill(child.pid, 0)  # still "there" to a signal
        assert not _process_alive(child.pid)
    finally:
        child.wait()
    assert not _process_alive(child.pid)
    assert _process_alive(os.getpid())
