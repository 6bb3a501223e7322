"""Brokers: how a committed event reaches every open stream, in this process or in all of them.

``LocalBroker`` fans out within one process. ``RedisBroker`` publishes through Redis pub/sub and
keeps one Redis subscriber per process feeding the same local fan-out, never one connection per
browser. If Redis goes away, streams stay open; when the subscriber is back, every stream
catches up from the events table, so nothing is missed. The same subscriber carries "wake up"
notes to dispatchers in other processes.
"""
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable

from ...runtime import Broker, Message
from .recent import RecentEvents

log = logging.getLogger(__name__)

# What a wake-up is for: the channels' deliveries (the dispatcher) or webhooks (the webhook
# sender). Each loop is woken for its own work only: a worker's dispatcher woke for every
# webhook queued, and its sender for every delivery, each to find nothing (a wake-up from an
# older process, which names neither, wakes both).
DELIVERIES, WEBHOOKS = "deliveries", "webhooks"
WAKE_KINDS = (DELIVERIES, WEBHOOKS)

# ``read_between(after_id, before_id)``: the messages of the events between two ids, in order.
ReadBetween = Callable[[int, int], Iterable[Message]]

CLOSE = object()  # ends a stream (shutdown); the browser reconnects and resumes
RESYNC = object()  # the stream must catch up from the table: live messages may have been lost


class Subscription:
    """One watcher's bounded queue. When it overflows, the watcher reloads from the table.

    A list and one Event, rather than queue.Queue (a lock and three conditions) or even a
    deque (a 0.5 KiB block from the start): thousands of these are open at once, mostly
    empty, and memory per watcher counts (bench/fanout.py). The list stays short: a
    watcher who lets it grow past ``size`` catches up from the table instead.

    ``conduit``, when the stream sets one (``conduit.Conduit``), lets the fan-out write a live
    message to the watcher's socket itself while the stream waits, instead of queueing it and
    waking the stream: one loop writes a frame to every watcher (bench/fanout.py).
    """

    __slots__ = ("size", "overflowed", "conduit", "_items", "_ready")

    def __init__(self, size: int):
        self.size = size
        self.overflowed = False
        self.conduit = None
        self._items = []
        self._ready = threading.Event()

    @property
    def empty(self) -> bool:
        return not self._items

    def put(self, message: Message | object) -> None:
        if len(self._items) >= self.size:
            self.overflowed = True
            return
        self._items.append(message)
        self._ready.set()

    def get(self, timeout: float) -> Message | object | None:
        """The next message, or None after ``timeout`` seconds without one."""
        if not self._items:
            self._ready.wait(timeout)
        self._ready.clear()  # a put after this finds the list non-empty at the next get
        return self._items.pop(0) if self._items else None

    def drain(self) -> None:
        """Empty the queue (before catching up from the table, which has all of it)."""
        self._items.clear()


class LocalBroker:
    """Fans events out to the watchers of this process, and keeps the recent ones (``recent``)
    for the streams that resume from among them."""

    def __init__(self, queue_size: int = 1000):
        self.queue_size = queue_size
        self.recent = RecentEvents()
        self._subscribers = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self.queue_size)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, message: Message) -> None:
        self.fan_out(message)

    def fan_out(self, message: Message | object, after: int | None = None) -> None:
        """Give ``message`` to every watcher: written at once where the stream lets its conduit
        take it, queued for the stream otherwise. ``after``: the id of the message fanned out
        before this one when every id between them is known not to exist (see RedisBroker)."""
        self.recent.heard(message, after)  # first: a stream subscribing now finds it there
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            conduit = subscription.conduit
            if conduit is None or not conduit.take(message, after):
                subscription.put(message)

    def close_all(self) -> None:
        """End every open stream (on shutdown); browsers reconnect and resume."""
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            subscription.drain()
            subscription.put(CLOSE)

    def resync_all(self) -> None:
        """Every stream catches up from the table (after live messages may have been lost):
        through the recent events, read afresh once for all of them."""
        self.recent.forget()
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            subscription.put(RESYNC)

    def publish_wake(self, kind: str = DELIVERIES) -> None:
        """Dispatchers in other processes: nothing to do here, there are none."""

    def warm(self) -> None:
        """Connect what a first publish would (``warm.warm``): nothing, in one process."""

    def on_wake(self, callback: Callable[[], None], kind: str | None = None) -> None:
        """Call ``callback`` when another process queues work of ``kind`` (any, if None):
        never, for one process."""


# A PUBLISH answers in well under a millisecond: one that has not within this long finds a
# Redis that is down or hung; publishing then waits this long before it tries Redis again.
PUBLISH_TIMEOUT_SECONDS = 0.5
PUBLISH_PAUSE_SECONDS = 5.0


class RedisBroker(LocalBroker):
    """Fans out what any process publishes, in id order.

    Processes publish after their commits in whatever order they get to it, so an event can
    arrive before one with a lower id. Every id below an arriving one has settled (committed
    or rolled back: ``event_log.record``), so the listener reads the ones it has not heard
    from the table itself, once for the process, with ``read_between(after_id, before_id)``,
    and fans them out first. Otherwise each of thousands of streams would notice the gap and
    read the table on its own, all at once (bench/fanout.py found sends stalled for seconds).
    """

    def __init__(self, url: str, prefix: str = "sendauth", queue_size: int = 1000,
                 retry_seconds: tuple[float, float] = (0.2, 5.0),
                 read_between: ReadBetween | None = None):
        import redis

        super().__init__(queue_size)
        self.read_between = read_between
        self._heard = None  # the last id fanned out in order; None when not known
        self._errors = redis.RedisError
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._publisher = redis.Redis.from_url(url, socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS,
                                               socket_timeout=PUBLISH_TIMEOUT_SECONDS)
        self._paused_until = 0.0
        self._unpublished = None  # the newest event published locally only (Redis away)
        self._retry = None  # the timer that publishes it
        self._order_lock = threading.Lock()
        self.events_channel = f"{prefix}:events"
        self.wake_channel = f"{prefix}:wake"
        self._retry_min, self._retry_max = retry_seconds
        self._wake_callbacks = []
        self._listener = None
        self._listening = threading.Event()
        self._stop = threading.Event()

    def publish(self, message):
        if not self._publish(self.events_channel, json.dumps(message)):
            # This process's watchers still see it now, in id order with what other processes
            # committed meanwhile (read from the table once for the process, not by each
            # stream on its own: thousands of them at once emptied the database pool). The
            # other processes hear of it once Redis answers again (``_publish_later``).
            self._publish_later(message)
            self._in_order(message)

    def _publish_later(self, message):
        """Publish the newest event not published, once Redis answers again: the others read
        what they missed below it from the table. Else an event published after Redis came
        back but within the pause (a hung Redis's listeners never reconnect, so never catch
        up) reached no other process until a later event did, however long that took."""
        with self._order_lock:
            newest = self._unpublished
            if newest is None or message.get("id", 0) >= newest.get("id", 0):
                self._unpublished = message
            if self._retry is None and not self._stop.is_set():
                wait = max(0.0, self._paused_until - time.monotonic()) + 0.05
                self._retry = threading.Timer(wait, self._publish_unpublished)
                self._retry.daemon = True
                self._retry.start()

    def _publish_unpublished(self):
        with self._order_lock:
            message, self._unpublished, self._retry = self._unpublished, None, None
        if message is not None and not self._publish(self.events_channel, json.dumps(message)):
            self._publish_later(message)  # still away: when it pauses next

    def warm(self):
        """Connect the publisher and start the listener before the first send needs them; a
        Redis that does not answer now is tried again at the first publish."""
        try:
            self._publisher.ping()
        except self._errors as exc:
            log.warning("broker: Redis did not answer while warming (%s)",
                        exc.__class__.__name__)
        self._ensure_listener()

    def publish_wake(self, kind=DELIVERIES):
        # When it fails, dispatchers find the work when they next look.
        self._publish(self.wake_channel, kind)

    def _publish(self, channel, data):
        """Publish through Redis; False when Redis failed now or lately. A publish comes after
        a commit, in the request that made it: a Redis that is down or hangs costs one
        PUBLISH_TIMEOUT_SECONDS, then PUBLISH_PAUSE_SECONDS of local delivery only, not every
        send its 5 s socket timeout."""
        if time.monotonic() < self._paused_until:
            return False
        try:
            self._publisher.publish(channel, data)
            return True
        except self._errors as exc:
            self._paused_until = time.monotonic() + PUBLISH_PAUSE_SECONDS
            log.warning("broker: Redis publish failed (%s); delivering locally for %.0f s",
                        exc.__class__.__name__, PUBLISH_PAUSE_SECONDS)
            return False

    def subscribe(self):
        subscription = super().subscribe()
        self._ensure_listener()
        return subscription

    def on_wake(self, callback, kind=None):
        self._wake_callbacks.append((callback, kind))
        self._ensure_listener()

    @property
    def listening(self):
        return self._listening.is_set()

    def wait_until_listening(self, timeout):
        return self._listening.wait(timeout)

    def _ensure_listener(self):
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="sendauth-broker",
                                                  daemon=True)
                self._listener.start()

    def stop(self):
        self._stop.set()
        with self._order_lock:
            if self._retry is not None:
                self._retry.cancel()
        if self._listener is not None:
            self._listener.join(5)

    def _listen(self):
        delay = self._retry_min
        while not self._stop.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.events_channel, self.wake_channel)
                self._listening.set()
                delay = self._retry_min
                self._heard = None
                self.resync_all()  # whatever was published while we were away is in the table
                for callback, _ in self._wake_callbacks:
                    callback()
                while not self._stop.is_set():
                    item = pubsub.get_message(timeout=1.0)
                    if item is not None and item["type"] == "message":
                        self._dispatch(item)
            except self._errors as exc:
                if self._listening.is_set():
                    log.warning("broker: lost Redis (%s); streams stay open and catch up when "
                                "it is back", exc.__class__.__name__)
                self._listening.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, self._retry_max)
            finally:
                pubsub.close()
        self._listening.clear()

    def _dispatch(self, item):
        channel = item["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if channel == self.wake_channel:
            kind = item["data"].decode() if isinstance(item["data"], bytes) else item["data"]
            for callback, wants in self._wake_callbacks:
                if wants is None or wants == kind or kind not in WAKE_KINDS:
                    callback()
        else:
            self._in_order(json.loads(item["data"]))

    def _in_order(self, message):
        """Fan ``message`` out after whatever this process has not heard below it. From the
        listener, and from ``publish`` while Redis is away: one at a time."""
        with self._order_lock:
            self._in_order_locked(message)

    def _in_order_locked(self, message):
        event_id = message.get("id")
        heard = self._heard
        if not self._subscribers:  # a process with no stream (a dispatcher) reads nothing
            self._heard = None
            return
        if heard is None or not isinstance(event_id, int) or event_id <= heard:
            # The first, or one heard already (read from the table when it was late).
            if heard is None and isinstance(event_id, int):
                self._heard = event_id
            self.fan_out(message)
            return
        after = heard
        if event_id > heard + 1 and self.read_between is not None:
            try:
                missed = self.read_between(heard, event_id)
            except Exception:  # the table is away: each stream catches up on its own
                log.exception("broker: could not read events %s to %s; streams catch up "
                              "themselves", heard + 1, event_id - 1)
                self._heard = event_id
                self.fan_out(message)
                return
            for earlier in missed:
                self.fan_out(earlier, after)
                after = earlier["id"]
        elif event_id > heard + 1:
            after = None
        self._heard = event_id
        self.fan_out(message, after)


def broker_for(config, read_between: ReadBetween | None = None) -> Broker:
    """``read_between(after_id, before_id)``: the messages of the events between two ids, from
    the table (``replay.reader``)."""
    if config.get("REDIS_URL"):
        return RedisBroker(config["REDIS_URL"], prefix=config["REDIS_CHANNEL_PREFIX"],
                           read_between=read_between)
    return LocalBroker()
