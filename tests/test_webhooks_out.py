"""Outgoing webhooks: each event reaches a receiver that verifies it with the standardwebhooks
package; retries, failures, rotation, a sender that died, and slow endpoints."""
import json
from datetime import timedelta

import pytest

from sendauth_dashboard.core import event_kinds as kinds
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import (
    Event,
    Passkey,
    Transaction,
    User,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    utcnow,
)
from sendauth_dashboard.services.people import accounts, passkeys
from sendauth_dashboard.services.requests import transactions
from sendauth_dashboard.services.webhooks import endpoints, queue, sending
from sendauth_dashboard.services.webhooks.sender import Sender
from tests.fakes.http import Answer
from tests.fakes.receiver import WebhookReceiver
from tests.support.helpers import configure_pagerduty, send_request, wait_until

EVERY_TYPE = list(endpoints.SUBSCRIBABLE)


@pytest.fixture
def app_config(app_config):
    app_config.update(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True, WEBHOOK_TIMEOUT_SECONDS=0.5,
                      WEBHOOK_RETRY_SCHEDULE=[0, 0.01, 0.01], WEBHOOK_CONCURRENCY=4)
    return app_config


def add_endpoint(app, receiver, types=EVERY_TYPE, path="/hooks"):
    with app.app_context():
        endpoint, secret = endpoints.create(receiver.base_url + path, "Help desk", types,
                                            True, actor=None)
        db.session.commit()
        receiver.secrets.append(secret)
        return endpoint.id, secret


def send_all(app):
    return Sender(app, name="test-sender").run_until_idle()


@pytest.fixture
def people(app, make_user):
    configure_pagerduty(app)
    return make_user("requestor", name="Hana"), make_user("member", name="Uma",
                                                          notify_pagerduty=True)


def messages(app, **where):
    with app.app_context():
        return db.session.scalars(db.select(WebhookMessage).filter_by(**where)
                                  .order_by(WebhookMessage.id)).all()


@pytest.mark.both_databases
def test_a_verified_request_reaches_the_receiver_signed_without_code_or_link(app, receiver,
                                                                              people):
    hana, uma = people
    add_endpoint(app, receiver)
    public_id = send_request(app, hana, uma)
    with app.app_context():
        t = db.session.scalar(db.select(Transaction).filter_by(public_id=public_id))
        code = t.binding_code
        transactions.answer(t, "verify", user=db.session.get(User, uma.id),
                            data={"proof": "passkey"})
        db.session.commit()
    assert send_all(app) == ["sent", "sent"]
    assert receiver.types() == ["transaction.created", "transaction.verified"]
    verified = receiver.verified[1].payload
    assert set(verified) == {"type", "timestamp", "data"}
    data = verified["data"]
    assert (data["id"], data["status"], data["answered_how"]) == (public_id, "verified",
                                                                  "passkey")
    assert data["user"] == {"id": uma.id, "email": uma.email, "name": uma.name}
    assert data["answered_by"]["id"] == uma.id and data["requestor"]["id"] == hana.id
    raw = receiver.received[1].raw.decode()
    assert "/authenticate/" not in raw and "token" not in raw and "code" not in raw
    assert code not in leaves(verified)
    assert len(receiver.received[1].raw) < 20_000


def leaves(document):
    """Every value in a JSON document, as text."""
    if isinstance(document, dict):
        return [v for value in document.values() for v in leaves(value)]
    if isinstance(document, list):
        return [v for value in document for v in leaves(value)]
    return [str(document)]


def test_no_webhook_is_queued_for_a_change_rolled_back(app, receiver, people):
    hana, uma = people
    add_endpoint(app, receiver)
    with app.app_context():
        transactions.create(requestor=db.session.get(User, hana.id), user_email=uma.email,
                            message="rolled back")
        db.session.rollback()
    assert messages(app) == []


def test_each_event_type_is_sent_to_the_endpoints_that_want_it(app, receiver, people,
                                                               make_user, app_config):
    hana, uma = people
    _, _ = add_endpoint(app, receiver)
    only_verified = WebhookReceiver().start()
    try:
        add_endpoint(app, only_verified, types=["transaction.verified"])
        make_user("member", email="new@example.com")  # created, passkey added
        with app.app_context():
            new = db.session.scalar(db.select(User).filter_by(email="new@example.com"))
            passkeys.discard(db.session.scalar(db.select(Passkey).filter_by(user_id=new.id)))
            accounts.set_active(new, False, actor=db.session.get(User, hana.id))
            db.session.commit()
        ids = [send_request(app, hana, uma, message=f"request {n}") for n in range(3)]
        with app.app_context():
            rows = {i: db.session.scalar(db.select(Transaction).filter_by(public_id=i))
                    for i in ids}
            uma_row = db.session.get(User, uma.id)
            transactions.answer(rows[ids[0]], "deny", user=uma_row)
            transactions.cancel(rows[ids[1]], actor=db.session.get(User, hana.id))
            rows[ids[2]].expires_at = utcnow() - timedelta(seconds=1)
            db.session.commit()
            transactions.expire_due()
            test = queue.queue_test(endpoints.every_endpoint()[0])
            db.session.commit()
            assert test.event_type == "webhook.test"
        send_all(app)
        assert set(receiver.types()) == {
            "user.created", "user.passkey_added", "user.passkey_removed", "user.deactivated",
            "transaction.created", "transaction.denied", "transaction.cancelled",
            "transaction.expired", "webhook.test"}
        assert only_verified.received == []
        deactivated = next(v.payload for v in receiver.verified
                           if v.payload["type"] == "user.deactivated")
        assert deactivated["data"]["email"] == "new@example.com"
        assert deactivated["data"]["active"] is False
    finally:
        only_verified.stop()


def test_a_contact_change_is_sent(app, receiver, make_user):
    from sendauth_dashboard.services.people import preferences
    from tests.support.accounts import PASSWORD

    user = make_user("member", passkey=False, notify_email=True)
    add_endpoint(app, receiver, types=["user.contact_changed"])
    with app.app_context():
        row = db.session.get(User, user.id)
        wants = {name: row.wants(name) for name in ("pagerduty", "email", "sms", "slack")}
        preferences.update_messaging(row, wants=wants, contact={"phone": "+14155550123"},
                                     password=PASSWORD)
        db.session.commit()
    send_all(app)
    (got,) = receiver.verified
    assert got.payload["type"] == "user.contact_changed"
    assert got.payload["data"]["changes"] == ["phone number added"]
    assert "+1415" not in receiver.received[0].raw.decode()


def test_a_request_no_channel_reached_is_undeliverable(app, receiver, people, app_config):
    from tests.support.helpers import dispatch

    app.config["DELIVERY_MAX_ATTEMPTS"] = 1  # PagerDuty's address in tests refuses
    hana, uma = people
    add_endpoint(app, receiver, types=["transaction.undeliverable"])
    public_id = send_request(app, hana, uma)
    dispatch(app)
    send_all(app)
    (got,) = receiver.verified
    assert (got.payload["type"], got.payload["data"]["id"]) == ("transaction.undeliverable",
                                                                public_id)


def test_rotation_signs_with_both_secrets_for_a_day_then_only_the_new(app, receiver):
    app.config["WEBHOOK_RETRY_SCHEDULE"] = [0, 60]  # a refused one is not tried again here
    endpoint_id, old = add_endpoint(app, receiver)
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        new = endpoints.rotate(endpoint, actor=None)
        queue.queue_test(endpoint)
        db.session.commit()
    receiver.secrets = [old]  # a receiver not yet told of the new secret
    send_all(app)
    assert receiver.verified[-1].signatures == 2
    receiver.secrets = [new]
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        queue.queue_test(endpoint)
        endpoint.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        queue.queue_test(endpoint)
        db.session.commit()
    send_all(app)
    assert [v.signatures for v in receiver.verified[1:]] == [1, 1]
    receiver.secrets = [old]
    with app.app_context():
        queue.queue_test(db.session.get(WebhookEndpoint, endpoint_id))
        db.session.commit()
    send_all(app)
    assert receiver.refused == 1
    with app.app_context():
        kinds_seen = db.session.scalars(db.select(Event.kind)).all()
        rotated = db.session.scalar(db.select(Event).filter_by(kind=kinds.WEBHOOK_SECRET_ROTATED))
        assert kinds.WEBHOOK_ENDPOINT_CREATED in kinds_seen
        assert new not in json.dumps(rotated.data) and old not in json.dumps(rotated.data)


def queue_one_test(app, endpoint_id):
    with app.app_context():
        message = queue.queue_test(db.session.get(WebhookEndpoint, endpoint_id))
        db.session.commit()
        return message.id


def last_attempt(app):
    with app.app_context():
        return db.session.scalar(db.select(WebhookAttempt).order_by(WebhookAttempt.id.desc()))


@pytest.mark.parametrize("answer, words", [
    (Answer(500, {"error": "boom"}), "boom"),
    (Answer(302, "", headers={"Location": "http://169.254.169.254/latest"}), "redirect"),
    (Answer(404, "x" * 2_000_000), "x" * 300),  # a huge answer: only its start is read
])
def test_a_failed_answer_is_logged_short_and_retried_on_the_schedule(app, receiver, answer,
                                                                     words):
    endpoint_id, _ = add_endpoint(app, receiver)
    message_id = queue_one_test(app, endpoint_id)
    receiver.answer_next(answer)
    with app.app_context():
        ((claimed, _),) = queue.claim("one", 1)
        assert queue.attempt(claimed, "one") == "queued"
        row = db.session.get(WebhookMessage, message_id)
        assert row.next_attempt_at <= utcnow() + timedelta(seconds=1)
    attempt = last_attempt(app)
    assert attempt.http_status == answer.status and not attempt.success
    assert words in attempt.answer and len(attempt.answer) <= 300 + 40
    assert len(receiver.received) == 1  # a redirect is never followed
    wait_until(lambda: send_all(app) == ["sent"], timeout=5)
    (first, second) = [r.headers["webhook-id"] for r in receiver.received]
    assert first == second


def due_now(app):
    """Waiting out the retry schedule."""
    with app.app_context():
        db.session.execute(db.update(WebhookMessage).where(WebhookMessage.status == "queued")
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def test_429_with_retry_after_waits_as_asked(app, receiver):
    endpoint_id, _ = add_endpoint(app, receiver)
    message_id = queue_one_test(app, endpoint_id)
    receiver.answer_next(Answer(429, "slow down", headers={"Retry-After": "120"}))
    send_all(app)
    with app.app_context():
        row = db.session.get(WebhookMessage, message_id)
        assert row.status == "queued"
        assert row.next_attempt_at >= utcnow() + timedelta(seconds=110)


def test_refused_and_timed_out_attempts_are_retried_and_give_up_after_the_schedule(
        app, receiver):
    app.config["WEBHOOK_RETRY_SCHEDULE"] = [0, 60, 60]
    endpoint_id, _ = add_endpoint(app, receiver)
    message_id = queue_one_test(app, endpoint_id)
    receiver.answer_always(Answer.hanging())
    assert send_all(app) == ["queued"]
    assert "timed out" in last_attempt(app).answer
    receiver.answer_normally()
    receiver.stop()
    assert send_all(app) == []  # not due for a minute
    due_now(app)
    assert send_all(app) == ["queued"]
    assert "refused" in last_attempt(app).answer
    due_now(app)
    assert send_all(app) == ["failed"]
    with app.app_context():
        row = db.session.get(WebhookMessage, message_id)
        assert (row.status, row.attempts) == ("failed", 3)
        assert db.session.get(WebhookEndpoint, endpoint_id).failing_since is not None


def test_410_turns_the_endpoint_off_and_tells_the_admins(app, receiver):
    endpoint_id, _ = add_endpoint(app, receiver)
    queue_one_test(app, endpoint_id)
    waiting = queue_one_test(app, endpoint_id)
    receiver.answer_next(Answer(410, "gone"))
    with app.app_context():
        ((claimed, _),) = queue.claim("one", 5)
        assert queue.attempt(claimed, "one") == "gone"
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        assert not endpoint.enabled and "410" in endpoint.disabled_reason
        assert db.session.get(WebhookMessage, waiting).status == "cancelled"
        assert db.session.scalar(db.select(Event).filter_by(
            kind=kinds.WEBHOOK_ENDPOINT_DISABLED)) is not None


def test_three_days_of_failures_turn_the_endpoint_off(app, receiver):
    endpoint_id, _ = add_endpoint(app, receiver)
    queue_one_test(app, endpoint_id)
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        endpoint.failing_since = utcnow() - timedelta(days=3)
        db.session.commit()
    receiver.answer_next(Answer(503, "down"))
    send_all(app)
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        assert not endpoint.enabled and "every attempt failed" in endpoint.disabled_reason


@pytest.mark.both_databases
def test_a_sender_killed_mid_delivery_is_replaced_and_the_id_is_the_same(app, receiver):
    endpoint_id, secret = add_endpoint(app, receiver)
    message_id = queue_one_test(app, endpoint_id)
    with app.app_context():
        assert queue.claim("killed", 1) == [(message_id, endpoint_id)]
        row = db.session.get(WebhookMessage, message_id)
        # It sent, and died before it could record the answer.
        sending.deliver(row.endpoint.url, row.msg_id, row.payload.encode(), [secret],
                        app.config)
        row.lease_expires_at = utcnow() - timedelta(seconds=1)  # its lease runs out
        db.session.commit()
    assert send_all(app) == ["sent"]
    first, second = receiver.verified
    assert first.msg_id == second.msg_id and first.payload == second.payload


@pytest.mark.both_databases
def test_a_slow_endpoint_never_delays_another(app, receiver):
    slow = WebhookReceiver().start()
    try:
        slow_id, _ = add_endpoint(app, slow)
        fast_id, _ = add_endpoint(app, receiver)
        slow.answer_always(Answer.hanging())
        sender = Sender(app, name="threaded")
        sender.start()
        try:
            for _ in range(3):
                queue_one_test(app, slow_id)
            queue_one_test(app, fast_id)
            sender.wake()
            receiver.wait_for(lambda r: len(r.verified) == 1, timeout=2)
            assert len(slow.received) == 0  # still waiting for its first answer
        finally:
            slow.answer_normally()
            sender.stop(timeout=5)
    finally:
        slow.stop()


def test_replay_sends_the_same_id_and_body_again(app, receiver):
    endpoint_id, _ = add_endpoint(app, receiver)
    message_id = queue_one_test(app, endpoint_id)
    send_all(app)
    with app.app_context():
        message = db.session.get(WebhookMessage, message_id)
        assert queue.replay(message)
        db.session.commit()
    send_all(app)
    first, second = receiver.verified
    assert first.msg_id == second.msg_id and first.payload == second.payload


def test_admins_are_emailed_when_an_endpoint_is_turned_off(app, receiver, make_user):
    from tests.fakes.smtp import FakeSmtp
    from tests.support.helpers import configure_email, dispatch

    smtp = FakeSmtp()
    smtp.start()
    try:
        configure_email(app, smtp.port)
        admin = make_user("admin", notify_email=True, notify_pagerduty=False)
        endpoint_id, _ = add_endpoint(app, receiver)
        queue_one_test(app, endpoint_id)
        receiver.answer_next(Answer(410, "gone"))
        send_all(app)
        dispatch(app)  # the notice goes through the outbox
        smtp.wait_for(lambda s: len(s.received) == 1, timeout=5)
        (mail,) = smtp.received
        assert admin.email in mail.rcpt_tos and "stopped sending webhooks" in mail.body()
    finally:
        smtp.stop()


def test_the_name_is_resolved_once_and_the_checked_address_is_the_one_connected(
        app, receiver, monkeypatch):
    """A rebinding DNS server answers the second lookup differently: there is none."""
    import socket

    from sendauth_dashboard.services.webhooks import guard

    lookups = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)  # urllib3 too "resolves" the address it is given: no lookup
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(guard.socket, "getaddrinfo", getaddrinfo)
    endpoint_id, _ = add_endpoint(app, receiver)
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        endpoint.url = f"http://receiver.test:{receiver.port}/hooks"
        queue.queue_test(endpoint)
        db.session.commit()
    assert send_all(app) == ["sent"]
    assert [name for name in lookups if name != "127.0.0.1"] == ["receiver.test"]
    assert receiver.received[0].headers["Host"] == f"receiver.test:{receiver.port}"


def test_https_checks_the_certificate_of_the_checked_address(app, receiver):
    endpoint_id, secret = add_endpoint(app, receiver)
    with app.app_context():
        result = sending.deliver(f"https://localhost:{receiver.port}/hooks", "msg_x", b"{}",
                                 [secret], app.config)
    assert (result.outcome, result.http_status) == ("failed", None)
    assert "TLS" in result.answer and receiver.received == []


def test_an_answer_trickled_a_byte_at_a_time_ends_at_the_time_limit(app):
    """The status came at once; the body never ends: the attempt ends at the time limit."""
    import socket
    import threading
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.wait(0.02):
            try:
                connection.sendall(b"x")
            except OSError:
                break
        connection.close()

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    try:
        with app.app_context():
            result = sending.deliver(f"http://127.0.0.1:{listener.getsockname()[1]}/", "msg_t",
                                     b"{}", ["whsec_" + "A" * 40], app.config)
    finally:
        stop.set()
        listener.close()
    assert result.outcome == "sent" and result.answer.startswith("x")
    assert time.monotonic() - started < app.config["WEBHOOK_TIMEOUT_SECONDS"] + 0.5
