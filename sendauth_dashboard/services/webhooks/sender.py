"""The webhook sender: a loop of its own beside the channels' dispatcher.

It claims due messages, at most one per endpoint at a time, and sends each from a pool of
threads: an endpoint that answers slowly (or never, until the time limit) holds one thread,
never another endpoint's messages nor the channels' deliveries, which the dispatcher sends.
The thread sending to an endpoint that answers takes that endpoint's next due message
itself, in the database transaction that records the last one (up to CHAIN in a row or
CHAIN_SECONDS, then the loop's claim, oldest first across endpoints, decides again): its
loop claims only for endpoints no thread is sending to.
It runs where the dispatcher runs: a thread of the web process (DISPATCHER "thread"), or in
``flask --app wsgi worker``.
"""
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import SQLAlchemyError

from ...runtime import runtime
from ..live.broker import WEBHOOKS
from ..outbox.loop import Loop
from . import queue

log = logging.getLogger(__name__)

# One thread sends an endpoint's messages in a row while it answers: at most CHAIN of them,
# for at most CHAIN_SECONDS (an endpoint that answers slowly sends one at a time, as before).
CHAIN, CHAIN_SECONDS = 20, 1.0


class Sender(Loop):
    thread_name = "sendauth-webhooks"

    def __init__(self, app, concurrency=None, name=None):
        super().__init__()
        self.app = app
        self.concurrency = concurrency or app.config["WEBHOOK_CONCURRENCY"]
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:hooks:{id(self):x}"
        self._busy = {}  # endpoint id -> message id, being sent by this sender
        self._lock = threading.Lock()
        self._pool = None

    def run(self):
        """Loop until stopped; finishes the sends under way before returning."""
        runtime(self.app).broker.on_wake(self.wake, kind=WEBHOOKS)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sendauth-hook")
        idle = self.app.config["DISPATCHER_IDLE_SECONDS"]
        try:
            self._take_back()
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    with self.app.app_context():
                        claimed = self.tick()
                        due_in = None if claimed else queue.next_due_in(
                            busy_endpoints=self.busy_endpoints())
                    wait = 0 if claimed else min(idle, max(0.01, due_in if due_in is not None
                                                           else idle))
                except SQLAlchemyError:
                    log.exception("webhook sender: database error; trying again shortly")
                    wait = idle
                if wait:
                    self._wake.wait(wait)
        finally:
            self._pool.shutdown(wait=True)

    def _take_back(self):
        """What a sender of this host held when its process died is sent again now."""
        try:
            with self.app.app_context():
                taken = queue.take_back_from_the_dead()
        except SQLAlchemyError:
            log.exception("webhook sender: could not take back a dead sender's messages; "
                          "their leases bring them back")
            return
        if taken:
            log.warning("webhook sender: took back %d messages from a sender that died", taken)

    def busy_endpoints(self):
        with self._lock:
            return tuple(self._busy)

    def tick(self):
        with self._lock:
            free = self.concurrency - len(self._busy)
            busy = tuple(self._busy)
        if free <= 0:
            return 0
        claimed = queue.claim(self.name, free, busy_endpoints=busy)
        for message_id, endpoint_id in claimed:
            with self._lock:
                self._busy[endpoint_id] = message_id
            self._pool.submit(self._attempt, message_id, endpoint_id)
        return len(claimed)

    def _attempt(self, message_id, endpoint_id):
        """Send ``message_id``, then the endpoint's next due messages (up to CHAIN in all)."""
        try:
            with self.app.app_context():
                following, began = None, time.monotonic()
                for sent in range(1, CHAIN + 1):
                    then_next = sent < CHAIN and not self._stop.is_set() and \
                        time.monotonic() - began < CHAIN_SECONDS
                    _, following = queue.attempt_and_claim_next(
                        message_id, self.name, then_next=then_next, found=following)
                    if following is None:
                        break
                    message_id = following.id
                    with self._lock:
                        self._busy[endpoint_id] = message_id
        except Exception:
            log.exception("webhook sender: message %s failed unexpectedly; it is sent again "
                          "when its lease runs out", message_id)
        finally:
            with self._lock:
                self._busy.pop(endpoint_id, None)
            self._wake.set()  # a thread is free, and the endpoint's later messages are the loop's

    def run_until_idle(self):
        """For tests and the CLI: send everything due now, in this thread; returns outcomes."""
        outcomes = []
        with self.app.app_context():
            queue.take_back_from_the_dead()
            while claimed := queue.claim(self.name, self.concurrency):
                outcomes.extend(queue.attempt(m, self.name) for m, _ in claimed)
        return outcomes


def start_thread(app):
    """Start this web process's sender thread where the dispatcher runs as a thread."""
    if app.config["DISPATCHER"] != "thread":
        return None
    sender = runtime(app).webhook_sender = Sender(app)
    sender.start()
    return sender


def wake():
    """Tell the senders, here and in other processes, that messages were queued."""
    state = runtime()
    if state.webhook_sender is not None:
        state.webhook_sender.wake()
    state.broker.publish_wake(WEBHOOKS)
