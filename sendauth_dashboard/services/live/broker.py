"""Brokers: how a committed event reaches every open stream, in this process or in all of them.

``LocalBroker`` fans out within one process. ``RedisBroker`` publishes through Redis pub/sub and
keeps one Redis subscriber per process feeding the same local fan-out, never one connection per
browser. If Redis goes away, streams stay open; when the subscriber is back, every stream
catches up from the events table, so nothing is missed. The same subscriber carries "wake up"
notes to dispatchers in other processes.
"""
import collections
import json
import logging
import threading

log = logging.getLogger(__name__)

CLOSE = object()  # ends a stream (shutdown); the browser reconnects and resumes
RESYNC = object()  # the stream must catch up from the table: live messages may have been lost


class Subscription:
    """One watcher's bounded queue. When it overflows, the watcher reloads from the table.

    A deque and one Event, rather than queue.Queue (a lock and three conditions): thousands
    of these are open at once, and memory per watcher counts (bench/fanout.py).
    """

    __slots__ = ("size", "overflowed", "_items", "_ready")

    def __init__(self, size):
        self.size = size
        self.overflowed = False
        self._items = collections.deque()
        self._ready = threading.Event()

    def put(self, message):
        if len(self._items) >= self.size:
            self.overflowed = True
            return
        self._items.append(message)
        self._ready.set()

    def get(self, timeout):
        """The next message, or None after ``timeout`` seconds without one."""
        if not self._items:
            self._ready.wait(timeout)
        self._ready.clear()  # a put after this finds the deque non-empty at the next get
        try:
            return self._items.popleft()
        except IndexError:
            return None

    def drain(self):
        """Empty the queue (before catching up from the table, which has all of it)."""
        self._items.clear()


class LocalBroker:
    """Fans events out to the watchers of this process."""

    def __init__(self, queue_size=1000):
        self.queue_size = queue_size
        self._subscribers = set()
        self._lock = threading.Lock()

    def subscribe(self):
        subscription = Subscription(self.queue_size)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription):
        with self._lock:
            self._subscribers.discard(subscription)

    @property
    def subscriber_count(self):
        return len(self._subscribers)

    def publish(self, message):
        self.fan_out(message)

    def fan_out(self, message):
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            subscription.put(message)

    def close_all(self):
        """End every open stream (on shutdown); browsers reconnect and resume."""
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            subscription.drain()
            subscription.put(CLOSE)

    def resync_all(self):
        """Every stream catches up from the table (after live messages may have been lost)."""
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscription in subscribers:
            subscription.put(RESYNC)

    def publish_wake(self):
        """Dispatchers in other processes: nothing to do here, there are none."""

    def on_wake(self, callback):
        """Call ``callback`` when another process queues deliveries: never, for one process."""


class RedisBroker(LocalBroker):
    def __init__(self, url, prefix="sendauth", queue_size=1000, retry_seconds=(0.2, 5.0)):
        import redis

        super().__init__(queue_size)
        self._errors = redis.RedisError
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self.events_channel = f"{prefix}:events"
        self.wake_channel = f"{prefix}:wake"
        self._retry_min, self._retry_max = retry_seconds
        self._wake_callbacks = []
        self._listener = None
        self._listening = threading.Event()
        self._stop = threading.Event()

    def publish(self, message):
        try:
            self._redis.publish(self.events_channel, json.dumps(message))
        except self._errors as exc:
            # This process's watchers still see it now; the others catch up from the table
            # when their subscriber reconnects.
            log.warning("broker: Redis publish failed (%s); delivering locally",
                        exc.__class__.__name__)
            self.fan_out(message)

    def publish_wake(self):
        try:
            self._redis.publish(self.wake_channel, "1")
        except self._errors as exc:
            log.warning("broker: Redis wake failed (%s); dispatchers find the work when they "
                        "next look", exc.__class__.__name__)

    def subscribe(self):
        subscription = super().subscribe()
        self._ensure_listener()
        return subscription

    def on_wake(self, callback):
        self._wake_callbacks.append(callback)
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
                self.resync_all()  # whatever was published while we were away is in the table
                for callback in self._wake_callbacks:
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
            for callback in self._wake_callbacks:
                callback()
        else:
            self.fan_out(json.loads(item["data"]))


def broker_for(config):
    if config.get("REDIS_URL"):
        return RedisBroker(config["REDIS_URL"], prefix=config["REDIS_CHANNEL_PREFIX"])
    return LocalBroker()
