"""The webhook sender's loop: what a backlog costs it, and stopping it while it starts."""
import os
import signal
import socket
import subprocess
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import WebhookAttempt, WebhookEndpoint, WebhookMessage, utcnow
from sendauth_dashboard.services.outbox import loop as loop_module
from sendauth_dashboard.services.outbox.loop import Loop
from sendauth_dashboard.services.webhooks import endpoints, queue
from sendauth_dashboard.services.webhooks.sender import CHAIN, Sender
from tests.fakes.http import Answer
from tests.support import servers
from tests.support.helpers import wait_until


@pytest.fixture
def app_config(app_config):
    app_config.update(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True, WEBHOOK_TIMEOUT_SECONDS=2,
                      WEBHOOK_CONCURRENCY=4)
    return app_config


def queue_tests(app, receiver, count):
    """An endpoint for ``receiver`` with ``count`` test messages queued; their webhook-ids."""
    with app.app_context():
        endpoint, secret = endpoints.create(receiver.base_url + "/hooks", "Help desk",
                                            ["user.created"], True, actor=None)
        receiver.secrets.append(secret)
        db.session.flush()
        rows = [queue.queue_test(endpoint) for _ in range(count)]
        db.session.commit()
        return [row.msg_id for row in rows]


class Counted:
    """Statements the app's engine runs, and the sender loop's claims, while it is used."""

    def __init__(self, app, monkeypatch):
        self.statements, self.claims = 0, 0
        with app.app_context():
            self.engine = db.engine
        claim = queue.claim

        def counted_claim(*args, **kwargs):
            self.claims += 1
            return claim(*args, **kwargs)

        monkeypatch.setattr(queue, "claim", counted_claim)

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args):
        self.statements += 1


def test_a_backlog_for_one_endpoint_is_sent_in_order_by_its_thread_without_the_loop(
        app, receiver, monkeypatch):
    """The thread sending to an endpoint claims its next message as it records the last: the
    loop claimed once per message and, while an endpoint was being sent to, asked again every
    10 ms (its messages were due), so a sender of one process spent ~7 ms of CPU per webhook
    and fell behind four fast endpoints at 20 answers a second (make bench-webhooks)."""
    count = CHAIN + 5  # one chain, then the loop hands the rest to the next
    msg_ids = queue_tests(app, receiver, count)
    sender = Sender(app, name="chain")
    with Counted(app, monkeypatch) as counted:
        sender.start()
        try:
            receiver.wait_for(lambda r: len(r.verified) == count, timeout=20)
        finally:
            sender.stop(timeout=5)
    assert [v.msg_id for v in receiver.verified] == msg_ids  # in the order queued
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(WebhookMessage)
                                 .filter_by(status="sent")) == count
        assert db.session.get(WebhookEndpoint, 1).last_success_at is not None
    assert counted.claims <= 6, counted.claims  # 4 here; 50 before (one a message, and polls)
    # Recording, claiming the next and reading it: ~5 statements a message (13 before).
    assert counted.statements <= 6 * count, counted.statements


def test_the_loop_leaves_an_endpoint_being_sent_to_and_a_failure_ends_the_chain(app,
                                                                               receiver):
    queue_tests(app, receiver, 3)
    receiver.answer_next(Answer(200))
    receiver.answer_next(Answer(503, "down"))
    with app.app_context():
        ((first, endpoint_id),) = queue.claim("one", 5)
        assert queue.next_due_in() == 0  # the others are due
        assert queue.next_due_in(busy_endpoints=(endpoint_id,)) is None  # its thread's
        outcome, following = queue.attempt_and_claim_next(first, "one")
        assert outcome == "sent" and following.id == first + 1
        # A failure claims nothing more: a failing endpoint holds its thread for one message
        # at a time, and the loop's claim, oldest first across endpoints, decides again.
        assert queue.attempt_and_claim_next(following.id, "one", found=following) == \
            ("queued", None)
        assert [m.status for m in db.session.scalars(
            db.select(WebhookMessage).order_by(WebhookMessage.id))] == ["sent", "queued",
                                                                        "queued"]


class InTheWindow:
    """Loop.start's window, made to happen every time: ``signal`` reaches this process just
    after start() started the loop's thread and before it returned (its lock held), in the
    thread running start(), the way a SIGTERM reaches `flask worker` while it starts the
    sender; the window closes once the handler has asked the loop to stop."""

    def __init__(self, monkeypatch, signum):
        self.signum, self.loops = signum, []
        window = self

        class Thread(threading.Thread):
            def start(self):
                super().start()
                loop = self.loop
                window.loops.append(loop)
                os.kill(os.getpid(), window.signum)
                assert loop._stop.wait(10), "the handler did not run in the window"

        def thread(*, target, name, daemon):
            made = Thread(target=target, name=name, daemon=daemon)
            made.loop = target.__self__
            return made

        monkeypatch.setattr(loop_module, "threading", SimpleNamespace(
            Thread=thread, Lock=threading.Lock, Event=threading.Event))


class Ticking(Loop):
    """A loop whose work takes a lock of its own, as the webhook sender's tick does."""

    def __init__(self):
        super().__init__()
        self.work = threading.Lock()

    def run(self):
        while not self._stop.is_set():
            with self.work:
                pass
            self._wake.wait(5)


@pytest.fixture
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.timeout(20)
def test_a_loop_stopped_by_a_signal_while_it_starts_ends(monkeypatch, restore_signals):
    """The handler waits for the loop's thread, from inside start(): start's lock is its own,
    so that thread never waits for it (the worker's sender used one lock for both and hung)."""
    loop = Ticking()
    signal.signal(signal.SIGUSR1, lambda signum, frame: loop.stop())  # stop() joins the thread
    InTheWindow(monkeypatch, signal.SIGUSR1)
    loop.start()
    assert not loop.running
    loop.start()  # started once: a second start does nothing
    assert not loop.running


@pytest.mark.timeout(30)
def test_flask_worker_told_to_stop_while_it_starts_the_sender_ends(app, monkeypatch,
                                                                  restore_signals):
    """SIGTERM in the window, through the worker's own handler: it used to hang for ever."""
    window = InTheWindow(monkeypatch, signal.SIGTERM)
    result = app.test_cli_runner().invoke(args=["worker", "--concurrency", "1"])
    assert result.exit_code == 0, result.output
    assert "Stopping: finishing the sends under way." in result.output
    ((sender,),) = [window.loops]
    assert isinstance(sender, Sender) and not sender.running


@pytest.mark.timeout(60)
def test_a_worker_killed_mid_delivery_sends_it_again_with_the_same_id(app, receiver,
                                                                      tmp_path):
    """A `flask worker` SIGKILLed while the receiver holds its webhook: once the dead one's
    lease runs out, a sender sends it again with the same webhook-id, and the log has one
    attempt (the dead one's outcome was never known)."""
    (msg_id,) = queue_tests(app, receiver, 1)
    receiver.answer_next(Answer.slow(2))  # recorded, though the sender that sent it died
    worker = servers.worker(servers.environment(
        tmp_path, SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY=app.config["SECRET_KEY"], WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true",
        WEBHOOK_LEASE_SECONDS=1, WEBHOOK_TIMEOUT_SECONDS=30), tmp_path, name="killed")
    try:
        receiver.wait_for(lambda r: r.arrived == 1, timeout=30)
    finally:
        worker.stop(signal.SIGKILL)
    wait_until(lambda: Sender(app, name="next").run_until_idle() == ["sent"], timeout=10,
               message="the dead worker's lease ran out and the webhook was sent again")
    receiver.wait_for(lambda r: len(r.verified) == 2, timeout=10)
    assert [v.msg_id for v in receiver.verified] == [msg_id, msg_id]
    with app.app_context():
        message = db.session.scalar(db.select(WebhookMessage))
        assert (message.status, message.attempts) == ("sent", 1)
        assert db.session.scalar(db.select(db.func.count()).select_from(WebhookAttempt)) == 1


def test_what_a_dead_sender_of_this_host_held_is_sent_again_at_once(app, receiver):
    """A sender's process ended (killed, crashed) holding two messages: a sender starting on
    the same host sends them now, with their webhook-ids, not after the lease (a minute);
    one held by a live process, or by another host's, waits for its lease."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    host = socket.gethostname()
    ids = queue_tests(app, receiver, 4)
    owners = [f"{host}:{ended.pid}:hooks:1", f"{host}:{ended.pid}:hooks:1",
              f"{host}:{os.getpid()}:hooks:2", f"elsewhere:{ended.pid}:hooks:3"]
    with app.app_context():
        messages = db.session.scalars(db.select(WebhookMessage).order_by(WebhookMessage.id)).all()
        for message, owner in zip(messages, owners, strict=True):
            message.status, message.claimed_by = "sending", owner
            message.lease_expires_at = utcnow() + timedelta(seconds=60)
        db.session.commit()

    assert Sender(app, name="next").run_until_idle() == ["sent", "sent"]
    receiver.wait_for(lambda r: len(r.verified) == 2, timeout=10)
    assert sorted(v.msg_id for v in receiver.verified) == sorted(ids[:2])
    with app.app_context():
        statuses = db.session.scalars(db.select(WebhookMessage.status)
                                      .order_by(WebhookMessage.id)).all()
    assert statuses == ["sent", "sent", "sending", "sending"]
