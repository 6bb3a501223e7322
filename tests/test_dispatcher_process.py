"""The dispatcher as a process of its own under gunicorn (dispatcher_process.py): the master
starts one `flask worker` beside the web workers, starts it again when it dies, and takes it
along when it ends, however it ends."""
import contextlib
import os
import signal
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Transaction
from tests.support import servers
from tests.support.config import REDIS_URL, need, redis_available
from tests.support.helpers import wait_until

from .fakes.pagerduty import Answer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

# A held answer must not time out while the test reads who is sending.
SETTINGS = {"PAGERDUTY_READ_TIMEOUT": 30, "DELIVERY_LEASE_SECONDS": 60}


@pytest.fixture
def site(dashboard):
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    return dashboard(**SETTINGS)


def serve(site, **settings):
    """gunicorn as `make serve` runs it, with Redis unless ``settings`` say otherwise."""
    return site.serve(**{"REDIS_URL": REDIS_URL,
                         "REDIS_CHANNEL_PREFIX": f"test-{uuid.uuid4().hex[:8]}", **settings})


def children(server):
    """The master's children, whichever of its threads started them."""
    tasks = Path(f"/proc/{server.process.pid}/task")
    return [int(pid) for task in tasks.iterdir()
            for pid in (task / "children").read_text().split()]


def dispatcher_processes(server):
    return [pid for pid in children(server) if b"worker" in _command_line(pid)
            and b"flask" in _command_line(pid)]


def web_workers(server):
    return [pid for pid in children(server) if b"gunicorn" in _command_line(pid)]


def _command_line(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def running(pid):
    """Neither gone nor a zombie (a child whose parent has not collected it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def send(server, message="Confirm the VPN reset"):
    """A requestor's send through the page; returns the transaction's public id."""
    requestor = servers.Browser(server.url)
    requestor.login("hana@example.com")
    sent = requestor.post("/transactions/new", {"user": "uma@example.com", "message": message})
    assert sent.status_code == 302, sent.text[:300]
    return sent.headers["Location"].rsplit("/", 1)[1]


def arrived(fake, public_id, timeout=30):
    fake.wait_for(lambda f: public_id in {key for _, key in f.incidents}, timeout=timeout)


def sender_pid(site, public_id):
    """The process whose dispatcher holds the transaction's delivery (its name is
    host:pid:object), once one does."""
    def claimed_by():
        with site.app.app_context():
            owner = db.session.scalar(select(Delivery.claimed_by).join(Delivery.transaction)
                                      .where(Transaction.public_id == public_id,
                                             Delivery.status == "sending"))
            db.session.remove()
        return owner

    return int(wait_until(claimed_by, timeout=30, message="the delivery claimed").split(":")[-2])


def test_gunicorn_with_redis_sends_from_one_dispatcher_process_and_not_from_its_workers(
        site, fake_pagerduty):
    server = serve(site)
    (dispatcher,) = wait_until(lambda: dispatcher_processes(server),
                               message="a dispatcher process")
    fake_pagerduty.answer_always(Answer.slow(60))  # held until answer_normally()
    public_id = send(server)
    sender = sender_pid(site, public_id)
    fake_pagerduty.answer_normally()
    assert sender == dispatcher and sender not in web_workers(server)
    arrived(fake_pagerduty, public_id)


@pytest.mark.parametrize("settings", [{"DISPATCHER": "thread"}, {"REDIS_URL": ""}],
                         ids=["thread set by the operator", "without Redis"])
def test_otherwise_the_web_worker_sends_and_no_dispatcher_process_runs(site, fake_pagerduty,
                                                                       settings):
    server = serve(site, **settings)
    fake_pagerduty.answer_always(Answer.slow(60))
    public_id = send(server)
    sender = sender_pid(site, public_id)
    fake_pagerduty.answer_normally()
    assert web_workers(server) == [sender]
    assert dispatcher_processes(server) == []
    arrived(fake_pagerduty, public_id)


def test_a_killed_dispatcher_process_is_started_again_and_sends(site, fake_pagerduty):
    server = serve(site)
    (first,) = wait_until(lambda: dispatcher_processes(server), message="a dispatcher process")
    os.kill(first, signal.SIGKILL)
    (second,) = wait_until(lambda: [p for p in dispatcher_processes(server) if p != first],
                           timeout=30, message="a second dispatcher process")
    arrived(fake_pagerduty, send(server))
    log = server.log()
    assert f"Dispatcher process (pid:{first}) was killed by SIGKILL; starting it again" in log
    assert f"Dispatcher process started (pid:{second})" in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_dispatcher_process_ends_with_gunicorns_master(site, sig):
    """SIGTERM to the master alone: it stops the dispatcher on its way out. SIGKILL: the
    kernel sends the orphan SIGTERM (PR_SET_PDEATHSIG)."""
    server = serve(site)
    (dispatcher,) = wait_until(lambda: dispatcher_processes(server),
                               message="a dispatcher process")
    workers = web_workers(server)
    os.kill(server.process.pid, sig)
    try:
        assert server.process.wait(30) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
        wait_until(lambda: not running(dispatcher), timeout=30,
                   message="the dispatcher process gone")
        wait_until(lambda: not any(map(running, workers)), timeout=30,
                   message="the web workers gone")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)  # whatever outlived its master
    if sig == signal.SIGTERM:
        assert f"Dispatcher process (pid:{dispatcher}) exited with code 0" in server.log()
