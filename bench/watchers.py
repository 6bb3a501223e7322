"""What both fan-out benchmarks use: the watchers' process (bench/sse_client.py), the stream
settings that let thousands of one reviewer's streams share a worker, and flask-sse as the
comparison."""
import json
import queue
import subprocess
import sys
import threading
import time

import requests
from flask_sse import Message

from . import common

# Every watcher is the same reviewer, and up to 5,000 of them share a worker: the per-user and
# per-process caps on streams would refuse most (429), and a stream's lifetime (reconnect after
# SSE_MAX_SECONDS) must outlast opening 5,000 of them and the events.
STREAM_SETTINGS = {"STREAMS_PER_USER": 100_000, "STREAMS_PER_PROCESS": 100_000,
                   "SSE_MAX_SECONDS": 3600}


class Client:
    """The watchers' process (bench/sse_client.py) and the lines it writes."""

    def __init__(self, server_url, path, cookie, watchers, headers_first, options=()):
        """``options``: more of bench/sse_client.py's arguments (``--last-event-id 12``)."""
        host, port = server_url.rsplit("//", 1)[1].split(":")
        args = [sys.executable, "-m", "bench.sse_client", "--host", host, "--port", port,
                "--path", path, "--cookie", cookie, "--watchers", str(watchers), *options]
        if headers_first:
            args.append("--headers-first")
        self.process = subprocess.Popen(args, cwd=common.ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.events = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, key, timeout):
        """The next line that has ``key``; event lines seen meanwhile are kept."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if line is None:
                raise RuntimeError("the watchers' process ended early")
            if "event" in line:
                self.events[line["event"]] = line
            if key in line:
                return line

    def check(self):
        """Which ids the watchers read, and whether each read them all and in order."""
        self.process.stdin.write("check\n")
        line = self.next("check", 30)
        if line is None:
            raise TimeoutError("the watchers' process did not answer 'check' within 30 s")
        return line["check"]

    def wait_event(self, event_id, timeout):
        deadline = time.monotonic() + timeout
        while event_id not in self.events:
            if self.next("event", max(0.0, deadline - time.monotonic())) is None:
                break
        if event_id in self.events:
            return self.events[event_id]
        self.process.stdin.write(f"status {event_id}\n")
        return self.next("status", 10) or {"status": event_id, "count": None}

    def status(self, event_id):
        """How many of its open watchers have read ``event_id``, and when the last of them did."""
        self.process.stdin.write(f"status {event_id}\n")
        line = self.next("status", 30)
        if line is None:
            raise TimeoutError("the watchers' process did not answer 'status' within 30 s")
        return line

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("close\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def subscribers(redis, channel):
    return dict(redis.pubsub_numsub(channel)).get(channel.encode(), 0)


def cookie_header(session):
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


class FlaskSse:
    """flask-sse's stream on its own Redis channel; messages the size of the dashboard's."""

    name = "flask-sse"
    headers_first = False

    def __init__(self, folder, prefix, redis, message_bytes):
        self.folder = folder
        self.channel = f"{prefix}:flask-sse"
        self.redis = redis
        self.message_bytes = message_bytes
        self.sequence = 0

    def start(self, label):
        # No dispatcher: with Redis, gunicorn.conf.py would start one for an app without a database.
        env = common.environment(self.folder, REDIS_URL=common.REDIS_URL, DISPATCHER="off")
        self.server = common.served(env, self.folder, f"{self.name}-{label}",
                                    app="bench.flask_sse_app:app")
        session = requests.Session()
        session.post(f"{self.server.url}/login", timeout=10).raise_for_status()
        self.cookie = cookie_header(session)
        return self.server

    def path(self):
        return f"/stream?channel={self.channel}"

    def subscribers(self):
        return subscribers(self.redis, self.channel)

    def wait_subscribed(self, watchers, timeout):
        common.wait_until(lambda: self.subscribers() >= watchers, timeout,
                          message=f"{watchers} flask-sse subscriptions")

    def payload(self, event_id):
        """A message whose SSE text is as long as the dashboard's, as flask-sse publishes it."""
        data = {"id": event_id, "kind": "transaction.created", "pad": ""}
        size = len(str(Message(data, id=event_id)).encode())
        data["pad"] = "x" * max(0, (self.message_bytes or size) - size)
        return json.dumps(Message(data, id=event_id).to_dict())

    def publish(self, n):
        self.sequence += 1
        message = self.payload(self.sequence)
        committed_at = time.monotonic()
        self.redis.publish(self.channel, message)
        return committed_at, self.sequence

    def memory(self):
        return None

    def stop(self):
        self.server.stop()
