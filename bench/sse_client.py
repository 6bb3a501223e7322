"""Thousands of server-sent-event watchers in one process: plain asyncio connections (one
``asyncio.Protocol`` each, no HTTP library), so a watcher costs a few KB and a read costs a few
microseconds, and the time a watcher reads an event is stamped the moment its bytes arrive.

Run by bench/fanout.py as a child process; it speaks JSON lines:

    stdout  {"connected": n, "failed": f, "seconds": s}       once, when all N are open
            {"event": id, "count": n, "first": t, "p50": t, "p99": t, "last": t}
                                                              when every open watcher has read
                                                              event ``id`` (times: CLOCK_MONOTONIC)
            {"status": id, "count": n, "open": n, "last": t}  answer to "status <id>" on stdin
                                                              (``last``: the latest read, or null)
            {"started": t}                                    first, as it begins to connect
            {"check": {"open": n, "ids": [...], "incomplete": {id: count}, "out_of_order": n,
                       "watchers_out_of_order": n}}          answer to "check" on stdin
    stdin   "status <id>" | "check" | "close"

"check" is for "every watcher gets every event, in order": ``ids`` are all the ids any watcher
read; ``incomplete`` the ids fewer than the open watchers read; ``out_of_order`` the reads of an
id at or below one the same watcher had read already (a repeat or a reordering).

``--last-event-id`` sends that header, as a browser's EventSource does when it reconnects.

``--headers-first`` waits for each response's headers before counting a watcher as connected
(the dashboard answers at once); without it a watcher counts once its request is written
(flask-sse sends nothing before the first event, so the caller checks Redis instead).

Frames are parsed by the tests' one SSE parser (tests/support/sse.py); run from the repository's
top (``python -m bench.sse_client``), as bench/fanout.py does.
"""
import argparse
import asyncio
import json
import resource
import sys
import threading
import time

from tests.support.sse import Frames


class Tracker:
    """When each watcher read each event, and whether each watcher read its ids in order."""

    def __init__(self):
        self.open = 0
        self.reads = {}  # event id -> list of read times
        self.reported = set()
        self.out_of_order = 0
        self.watchers_out_of_order = set()

    def read(self, watcher, event_id, now):
        if event_id <= watcher.last_id:
            self.out_of_order += 1
            self.watchers_out_of_order.add(id(watcher))
        watcher.last_id = max(watcher.last_id, event_id)
        times = self.reads.setdefault(event_id, [])
        times.append(now)
        if len(times) >= self.open and event_id not in self.reported:
            self.report(event_id)

    def report(self, event_id):
        self.reported.add(event_id)
        times = sorted(self.reads[event_id])
        emit({"event": event_id, "count": len(times), "first": times[0],
              "p50": percentile(times, 50), "p99": percentile(times, 99), "last": times[-1]})

    def check(self):
        return {"open": self.open, "ids": sorted(self.reads),
                "incomplete": {event_id: len(times) for event_id, times in self.reads.items()
                               if len(times) < self.open},
                "out_of_order": self.out_of_order,
                "watchers_out_of_order": len(self.watchers_out_of_order)}

    def opened(self, watcher):
        watcher.counted = True
        self.open += 1

    def lost(self, watcher):
        if watcher.counted:
            watcher.counted = False
            self.open -= 1
            for event_id, times in self.reads.items():
                if event_id not in self.reported and len(times) >= self.open:
                    self.report(event_id)


class Watcher(asyncio.Protocol):
    def __init__(self, request, tracker, answered):
        self.request = request
        self.tracker = tracker
        self.answered = answered
        self.head = b""
        self.frames = Frames()
        self.streaming = False
        self.counted = False
        self.last_id = 0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        now = time.monotonic()
        if not self.streaming:
            self.head += data
            head, separator, data = self.head.partition(b"\r\n\r\n")
            if not separator:
                return
            self.streaming = True
            ok = head.split(b" ", 2)[1] == b"200"
            if not self.answered.done():
                self.answered.set_result(ok)
            if not ok:
                self.transport.close()
                return
        for frame in self.frames.feed(data):
            if frame.id is not None:
                self.tracker.read(self, int(frame.id), now)

    def connection_lost(self, exc):
        if not self.answered.done():
            self.answered.set_result(False)
        self.tracker.lost(self)


def percentile(ordered, q):
    """Of sorted values, linear interpolation between the closest ranks (as bench.common)."""
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def emit(document):
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


async def connect_all(args, tracker):
    loop = asyncio.get_running_loop()
    resume = f"Last-Event-ID: {args.last_event_id}\r\n" if args.last_event_id else ""
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               f"Accept: text/event-stream\r\nCookie: {args.cookie}\r\n{resume}\r\n").encode()
    gate = asyncio.Semaphore(args.concurrency)
    watchers, failed = [], 0

    async def one():
        nonlocal failed
        async with gate:
            answered = loop.create_future()
            try:
                _, watcher = await loop.create_connection(
                    lambda: Watcher(request, tracker, answered), args.host, args.port)
            except OSError:
                failed += 1
                return
            if args.headers_first:
                try:
                    ok = await asyncio.wait_for(answered, 60)
                except asyncio.TimeoutError:
                    ok = False
                if not ok:
                    watcher.transport.abort()
                    failed += 1
                    return
            tracker.opened(watcher)
            watchers.append(watcher)

    started = time.monotonic()
    emit({"started": started})
    await asyncio.gather(*(one() for _ in range(args.watchers)))
    emit({"connected": len(watchers), "failed": failed,
          "seconds": round(time.monotonic() - started, 3)})
    return watchers


def read_commands(loop, commands):
    for line in sys.stdin:
        loop.call_soon_threadsafe(commands.put_nowait, line.split())
    loop.call_soon_threadsafe(commands.put_nowait, ["close"])


async def main(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    tracker = Tracker()
    watchers = await connect_all(args, tracker)
    commands = asyncio.Queue()
    threading.Thread(target=read_commands, args=(loop, commands), daemon=True).start()
    while True:
        command = await commands.get()
        if command[0] == "close":
            break
        if command[0] == "status":
            event_id = int(command[1])
            reads = tracker.reads.get(event_id, ())
            emit({"status": event_id, "count": len(reads), "open": tracker.open,
                  "last": max(reads, default=None)})
        if command[0] == "check":
            emit({"check": tracker.check()})
    for watcher in watchers:
        watcher.transport.abort()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--cookie", default="")
    parser.add_argument("--watchers", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=20,
                        help="connections being opened at once")
    parser.add_argument("--headers-first", action="store_true")
    parser.add_argument("--last-event-id", type=int, default=0,
                        help="resume from this id (the Last-Event-ID header)")
    asyncio.run(main(parser.parse_args()))
