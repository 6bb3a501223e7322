"""The dispatcher: claims due deliveries, sends them, sweeps expired transactions, and prunes
rows that would otherwise grow for ever.

It runs as a thread of the web process by default (started with the process: ``serve``) or as
``flask --app wsgi worker`` (which gunicorn's master starts with SENDAUTH_DISPATCHER=process:
dispatcher_process.py); several may run at once against PostgreSQL.
"""
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from ...extensions import db
from ...models import Delivery, utcnow
from ...runtime import runtime
from ..live.broker import DELIVERIES
from ..people import passkeys, sign_ins
from ..requests import pagerduty_incidents, transactions
from . import deliveries
from .deliveries import attempt, claim, next_due_in
from .loop import Loop, owners_that_died

log = logging.getLogger(__name__)

# Expiring overdue transactions at most this often: a wake per delivery need not sweep too.
SWEEP_INTERVAL = 0.5
# Pruning expired challenges, ended sign-ins and old webhook ids at most this often.
PRUNE_INTERVAL = 60.0


# What a delivery taken back from a dead dispatcher says.
OUTCOME_UNKNOWN = ("The dispatcher sending this ended (its process stopped) before it recorded "
                   "the outcome: whether the provider got it is unknown, so it is sent again.")


def take_back_from_the_dead(host=None, alive=None, now=None):
    """Deliveries that a dispatcher of this host held when its process ended (killed, crashed):
    queued again at once as "outcome unknown", instead of waiting out their lease (a minute in
    which nothing was sent). PagerDuty's dedup_key makes a second send harmless; another
    channel may deliver twice, as it would after the lease. Commits; returns how many."""
    host, now = host or socket.gethostname(), now or utcnow()
    held = db.session.execute(select(Delivery.id, Delivery.claimed_by).where(
        Delivery.status == "sending",
        Delivery.claimed_by.startswith(f"{host}:", autoescape=True))).all()
    dead = owners_that_died({owner for _, owner in held}, host, alive)
    taken = 0
    for delivery_id, owner in held:
        if owner not in dead:
            continue
        if db.session.execute(update(Delivery).where(
                Delivery.id == delivery_id, Delivery.claimed_by == owner,
                Delivery.status == "sending").values(
                status="queued", next_attempt_at=now, claimed_by=None, lease_expires_at=None,
                last_error=OUTCOME_UNKNOWN)).rowcount:
            delivery = db.session.get(Delivery, delivery_id)
            deliveries.record_event(delivery, "retrying", {
                "channel": delivery.channel, "error": OUTCOME_UNKNOWN,
                "next_attempt_at": now.isoformat()})
            taken += 1
    db.session.commit()
    return taken


def prune(now=None):
    """Delete what has expired and is never read again: WebAuthn challenges past their expiry,
    signed-in sessions ended a while ago, webhook ids older than PagerDuty retries. Commits;
    returns how many rows of each went."""
    now = now or utcnow()
    pruned = {"passkey_challenges": passkeys.prune_challenges(now),
              "sign_ins": sign_ins.prune(now),
              "webhook_receipts": pagerduty_incidents.prune_receipts(now)}
    db.session.commit()
    return pruned


class Dispatcher(Loop):
    """Claims and sends due deliveries with a few worker threads; sweeps expired transactions.

    ``wake()`` makes it look at once (called once queued deliveries commit), so the common
    path has no polling delay; otherwise it looks again when the next delivery is due, and
    at least every ``DISPATCHER_IDLE_SECONDS`` (for deliveries queued by other processes).
    """

    thread_name = "sendauth-dispatcher"

    def __init__(self, app, concurrency=8, name=None):
        super().__init__()
        self.app = app
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        # The deliveries this dispatcher is sending now: never claimed again by it, even once
        # their lease has run out (a send slower than the lease is not sent twice from here).
        self._sending = set()
        self._lock = threading.Lock()
        self._pool = None
        self._next_sweep = 0.0
        self._next_prune = 0.0

    def run(self):
        """Loop until stopped; finishes the sends under way before returning."""
        runtime(self.app).broker.on_wake(self.wake, kind=DELIVERIES)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sendauth-send")
        idle = self.app.config["DISPATCHER_IDLE_SECONDS"]
        try:
            self._take_back()
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    with self.app.app_context():
                        claimed = self.tick()
                        wait = 0 if claimed else self._idle_wait(idle)
                except SQLAlchemyError:
                    log.exception("dispatcher: database error; trying again shortly")
                    wait = idle
                if wait:
                    self._wake.wait(wait)
        finally:
            self._pool.shutdown(wait=True)

    def _take_back(self):
        try:
            with self.app.app_context():
                taken = take_back_from_the_dead()
        except SQLAlchemyError:
            log.exception("dispatcher: could not take back a dead dispatcher's deliveries; "
                          "their leases bring them back")
            return
        if taken:
            log.warning("dispatcher: took back %d deliveries from a dispatcher that died",
                        taken)

    def _idle_wait(self, idle):
        """Until the next delivery is due (and its channel's send window has room) or the
        next transaction expires; at most ``idle``."""
        limits = self.app.config["DELIVERY_RATE_LIMITS"]
        expiry_in = transactions.next_expiry_in()
        if expiry_in is not None:
            expiry_in = max(expiry_in, self._next_sweep - time.monotonic())
        waits = [next_due_in(exclude=tuple(limits)), expiry_in]
        for name, (allowed, period) in limits.items():
            due_in = next_due_in(only=(name,))
            if due_in is not None:
                waits.append(max(due_in, self._window.next_free_in(name, allowed, period)))
        return max(0.01, min([idle, *(w for w in waits if w is not None)]))

    @property
    def _window(self):
        return runtime(self.app).send_window

    def claim_within_limits(self, free):
        """Claim up to ``free`` due deliveries; those of rate-limited channels only as many as
        the channel's send window has room for now."""
        limits = self.app.config["DELIVERY_RATE_LIMITS"]
        busy = tuple(self._sending)
        ids = claim(self.name, free, exclude=tuple(limits), busy=busy)
        for name, (allowed, period) in limits.items():
            room = free - len(ids)
            if room <= 0:
                break
            granted = self._window.reserve(name, allowed, period, room)
            if granted:
                claimed = claim(self.name, granted, only=(name,), busy=busy)
                self._window.release(name, granted - len(claimed))
                ids += claimed
        return ids

    def tick(self):
        """Expire what is overdue (at most every SWEEP_INTERVAL), prune (at most every
        PRUNE_INTERVAL), then claim as many due deliveries as there are free slots."""
        if time.monotonic() >= self._next_sweep:
            transactions.expire_due()
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL
        if time.monotonic() >= self._next_prune:
            prune()
            self._next_prune = time.monotonic() + PRUNE_INTERVAL
        free = self.concurrency - len(self._sending)
        if free <= 0:
            return 0
        ids = self.claim_within_limits(free)
        for delivery_id in ids:
            with self._lock:
                self._sending.add(delivery_id)
            self._pool.submit(self._attempt, delivery_id)
        return len(ids)

    def _attempt(self, delivery_id):
        try:
            with self.app.app_context():
                attempt(delivery_id, self.name)
        except Exception:
            log.exception("dispatcher: delivery %s failed unexpectedly; it is retried when "
                          "its lease runs out", delivery_id)
        finally:
            with self._lock:
                self._sending.discard(delivery_id)
            self._wake.set()

    def run_until_idle(self):
        """For tests and the CLI: send everything due now, in this thread; returns outcomes."""
        outcomes = []
        with self.app.app_context():
            take_back_from_the_dead()
            transactions.expire_due()
            prune()
            while ids := self.claim_within_limits(self.concurrency):
                outcomes.extend(attempt(i, self.name) for i in ids)
        return outcomes


def start_thread(app):
    """Start this web process's dispatcher thread when DISPATCHER is "thread", and keep it in
    the Runtime; None otherwise. Called once, by what starts a serving process
    (``sendauth_dashboard.serve``, a test's server), never by a request."""
    if app.config["DISPATCHER"] != "thread":
        return None
    dispatcher = runtime(app).dispatcher = Dispatcher(app)
    dispatcher.start()
    return dispatcher
