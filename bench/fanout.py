"""Benchmark 1, fan-out: N watchers of live updates, the dashboard against flask-sse and the floor.

Two modes:

- ``--mode send`` (the default; bench/fanout_e2e.py): end to end, from the requestor's real
  ``POST /transactions/new`` to the last watcher reading its ``transaction.created`` event, on
  SQLite and PostgreSQL, with one and two gunicorn workers, the dispatcher as `make serve` runs
  it and PagerDuty (the fake) receiving every send; next to flask-sse's bare publish and the
  floor (bench/floor.py: one loop writing the frame to N sockets).
- ``--mode commit`` (below): from a database commit made by this process to the last watcher,
  on ONE gunicorn gevent worker with the dispatcher off, on PostgreSQL; then flask-sse.

Commit mode, for each N (100, 1,000, 5,000 by default), first the dashboard, then flask-sse, each
on a fresh server (`gunicorn -c gunicorn.conf.py`, gevent, one worker) sharing the same Redis:

- N signed-in watchers open real HTTP streams (bench/sse_client.py, a separate process);
- this process commits state changes (a new transaction: the `transaction.created` event) through
  the app's own services on PostgreSQL, publishing through Redis as any web process would; for
  flask-sse it publishes a message of the same JSON size on its channel;
- latency of an event: from right after its commit (before publishing) to the LAST watcher
  reading it; also the first and the median watcher;
- memory per watcher: the worker's RSS (/proc/<pid>/status) after the events minus before the
  watchers connected, divided by N; for flask-sse also the Redis connections it opens.

Run: `make bench-fanout` (or `.venv/bin/python -m bench.fanout --help`).
"""
import argparse
import json
import time

import requests
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from sendauth_dashboard.core import event_log
from sendauth_dashboard.extensions import db
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.live import wire
from sendauth_dashboard.services.people import accounts
from sendauth_dashboard.services.requests import transactions

from . import common
from .common import get
from .watchers import STREAM_SETTINGS, Client, FlaskSse, cookie_header, subscribers

WARMUP_EVENTS = 2
EVENT_TIMEOUT = 30.0


class Commits:
    """The time right after each commit of this process, and the events it will publish."""

    def __init__(self):
        self.last = None
        sa_event.listen(Session, "after_commit", self._stamp, insert=True)

    def _stamp(self, session):
        ready = session.info.get("sendauth_ready_events") or []
        self.last = (time.monotonic(), [message for message in ready])


def redis_state(subject):
    """Subscriptions to the subject's channel; the Redis server's clients and memory (the last
    two count everyone's use of this Redis)."""
    info = subject.redis.info()
    return {"subscriptions": subscribers(subject.redis, subject.channel),
            "clients": info["connected_clients"], "used_memory_kib": info["used_memory"] // 1024}


class Dashboard:
    """The dashboard's stream, events committed by this process, fanned out through Redis."""

    name = "sendauth"
    headers_first = True

    def __init__(self, url, folder, prefix, commits, redis, memory_detail=False):
        self.redis = redis
        self.channel = f"{prefix}:events"  # the RedisBroker's
        self.memory_detail = memory_detail
        self.folder = folder
        self.commits = commits
        self.prefix = prefix
        self.database_url = url
        self.app = common.driver_app(url, folder, REDIS_URL=common.REDIS_URL,
                                     REDIS_CHANNEL_PREFIX=prefix)
        common.seed_people(self.app)
        self.message_bytes = None

    def start(self, label):
        env = common.environment(
            self.folder, SQLALCHEMY_DATABASE_URI=self.database_url, REDIS_URL=common.REDIS_URL,
            REDIS_CHANNEL_PREFIX=self.prefix, DISPATCHER="off", **STREAM_SETTINGS)
        if self.memory_detail:
            env["PYTHONTRACEMALLOC"] = "1"
        app = "bench.instrumented:app" if self.memory_detail else "wsgi:app"
        self.server = common.served(env, self.folder, f"{self.name}-{label}", app=app)
        browser = common.signed_in(self.server.url, common.REVIEWER)
        self.cookie = cookie_header(browser.session)
        return self.server

    def path(self):
        with self.app.app_context():
            return f"/transactions/stream?after={event_log.latest_event_id()}"

    def wait_subscribed(self, watchers, timeout):
        """Each watcher has its answer's headers, sent after it subscribed: nothing to wait for."""

    def publish(self, n):
        with self.app.app_context():
            requestor = accounts.find_by_email(common.REQUESTOR)
            transactions.create(requestor=requestor, user_email=common.MEMBER,
                                message=f"Fan-out benchmark event {n}: please confirm it is you",
                                context=f"Ticket #{4000 + n}")
            db.session.commit()
        committed_at, messages = self.commits.last
        (message,) = messages
        self.message_bytes = len(wire.sse_format(message).encode())
        return committed_at, message["id"]

    def memory(self):
        """Where the worker's memory is (bench.instrumented's /_bench/memory)."""
        if not self.memory_detail:
            return None
        return requests.get(f"{self.server.url}/_bench/memory", timeout=120).json()

    def stop(self):
        self.server.stop()


def measure(subject, watchers, events_count, report, profile=False):
    """One subject at one N on a fresh server. Returns the row."""
    server = subject.start(watchers)
    row = {"subject": subject.name, "watchers": watchers}
    client = None
    try:
        pid = common.only_worker_pid(server)
        _warm_up(subject, server)
        rss_before = common.rss_kib(pid)
        redis_before = redis_state(subject)
        connect_cpu_before = common.cpu_seconds(pid)
        client = Client(server.url, subject.path(), subject.cookie, watchers,
                        subject.headers_first)
        connected = client.next("connected", 300)
        if connected is None:
            raise TimeoutError(f"{watchers} watchers not connected within 300 s")
        subject.wait_subscribed(connected["connected"], 120)
        row.update(connected=connected["connected"], failed=connected["failed"],
                   connect_seconds=connected["seconds"],
                   worker_cpu_ms_per_connect=round(
                       common.ms(common.cpu_seconds(pid) - connect_cpu_before) / watchers, 2))
        time.sleep(1.0)
        rss_connected = common.rss_kib(pid)
        redis_connected = redis_state(subject)
        memory = subject.memory()
        if memory:
            row["memory_detail"] = memory
            print(f"  memory: {json.dumps(memory, indent=1)}", flush=True)
        for n in range(WARMUP_EVENTS):
            _, event_id = subject.publish(n)
            client.wait_event(event_id, EVENT_TIMEOUT)
        last, first, median, lost = [], [], [], 0
        profiler = common.Profile(pid, f"fanout-{subject.name}-{watchers}",
                                  native=profile == "native") if profile else None
        if profiler:
            profiler.__enter__()
        cpu_before = common.cpu_seconds(pid)
        client_cpu_before = common.cpu_seconds(client.process.pid)
        for n in range(events_count):
            committed_at, event_id = subject.publish(WARMUP_EVENTS + n)
            seen = client.wait_event(event_id, EVENT_TIMEOUT)
            if "event" not in seen or seen["count"] < connected["connected"]:
                lost += 1
                report.note(f"{subject.name} N={watchers}: event {event_id} reached "
                            f"{seen.get('count')} of {connected['connected']} watchers "
                            f"within {EVENT_TIMEOUT:g} s")
                continue
            last.append(common.ms(seen["last"] - committed_at))
            first.append(common.ms(seen["first"] - committed_at))
            median.append(common.ms(seen["p50"] - committed_at))
            time.sleep(0.2)
        cpu = common.cpu_seconds(pid) - cpu_before
        client_cpu = common.cpu_seconds(client.process.pid) - client_cpu_before
        if profiler:
            profiler.__exit__(None, None, None)
            row["profile"] = profiler.summary()
        rss_after = common.rss_kib(pid)
        if common.only_worker_pid(server) != pid:
            report.note(f"{subject.name} N={watchers}: the gunicorn worker was restarted")
        row.update(
            last=common.summary(last), first=common.summary(first),
            median_watcher=common.summary(median), lost_events=lost,
            message_bytes=subject.message_bytes,
            rss_kib={"before": rss_before, "connected": rss_connected, "after": rss_after},
            kib_per_watcher=round((rss_after - rss_before) / watchers, 1),
            kib_per_watcher_connected=round((rss_connected - rss_before) / watchers, 1),
            worker_cpu_ms_per_event=round(common.ms(cpu) / max(1, events_count), 1),
            worker_cpu_us_per_watcher_event=round(
                cpu * 1e6 / max(1, events_count) / watchers, 1),
            client_cpu_ms_per_event=round(common.ms(client_cpu) / max(1, events_count), 1),
        )
        row["redis"] = {"before": redis_before, "connected": redis_connected}
        row["redis_subscriptions"] = redis_connected["subscriptions"]
        row["redis_clients_added"] = redis_connected["clients"] - redis_before["clients"]
        row["redis_kib_per_watcher"] = round(
            (redis_connected["used_memory_kib"] - redis_before["used_memory_kib"]) / watchers, 1)
    finally:
        if client is not None:
            client.close()
        subject.stop()
    return report.add(**row)


def _warm_up(subject, server):
    """Serve a few streams and events first, so one-time costs are not counted per watcher."""
    client = Client(server.url, subject.path(), subject.cookie, 10, subject.headers_first)
    client.next("connected", 60)
    subject.wait_subscribed(10, 30)
    for n in range(WARMUP_EVENTS):
        _, event_id = subject.publish(-1 - n)
        client.wait_event(event_id, EVENT_TIMEOUT)
    client.close()
    subject.publish(-9)  # flask-sse notices a closed stream only when it next writes to it
    time.sleep(0.5)


COLUMNS = [
    ("subject", get("subject")),
    ("store/broker", get("store")),
    ("N", get("watchers")),
    ("open", get("connected")),
    ("last p50 ms", get("last", "p50")),
    ("last p99 ms", get("last", "p99")),
    ("last min-max", lambda row: f"{row['last']['min']:.0f}-{row['last']['max']:.0f}"
     if row["last"].get("n") else None),
    ("first p50", get("first", "p50")),
    ("KiB/watcher", get("kib_per_watcher")),
    ("CPU us/watcher/event", get("worker_cpu_us_per_watcher_event")),
    ("CPU ms/connect", get("worker_cpu_ms_per_connect")),
    ("Redis subs", get("redis_subscriptions")),
    ("Redis KiB/watcher", get("redis_kib_per_watcher")),
    ("flask-sse/ours p99", get("ratio_p99")),
    ("flask-sse/ours KiB", get("ratio_memory")),
    ("load", get("load_1min")),
]


HELP = """\
--mode send (the default) measures from the requestor's POST of the send form to the last watcher
reading its event: the dashboard under gunicorn.conf.py's defaults (dispatcher included), Redis,
PagerDuty's fake receiving every send, per store and number of workers; then flask-sse's bare
publish and the floor (one gevent loop writing the frame to N sockets), same client, same clock.
Per row: the median send (by p99) and its p50/p99/last watcher in ms from just before the send,
the median POST, the worst send's last watcher, whether every watcher read every event in order,
memory per watcher (RSS after minus before / N), server CPU per send, the 1-minute load.

--mode commit measures from a commit made by this process to the last watcher (dispatcher off,
PostgreSQL, one worker), the dashboard against flask-sse (the table before issue 18).

Full measurement (on a quiet machine):  make bench-fanout
Smoke run:  make bench-fanout BENCH_ARGS="--watchers 100 --sends 3"

--mode storm opens N streams at once with Last-Event-ID on a freshly started server, a send 1 s
in: the time until all are live, the send's POST and last watcher, the worker's CPU per stream.
Storm:  make bench-fanout BENCH_ARGS="--mode storm --watchers 1000,5000,10000 --workers 1"
"""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Fan-out to N watchers: the dashboard vs flask-sse and the floor",
        epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("send", "commit", "storm"), default="send",
                        help="send: the requestor's POST to the last watcher (default); "
                             "commit: this process's commit to the last watcher; storm: N "
                             "streams reconnecting at once, a send during it (bench/storm.py)")
    parser.add_argument("--watchers", default="100,1000,5000",
                        help="comma-separated N (default: 100,1000,5000)")
    parser.add_argument("--sends", type=int, default=7,
                        help="send mode: measured sends per row, after 2 warm-ups (default: 7)")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="send mode: seconds from one send to the next, or later when the "
                             "last watcher reads it later (default: 2)")
    parser.add_argument("--stores", default="sqlite,postgres",
                        help="send mode: the dashboard's databases, comma-separated, of sqlite "
                             "(a file in the run's folder) and postgres (default: both)")
    parser.add_argument("--workers", default="1,2",
                        help="send mode: gunicorn worker counts for the dashboard, "
                             "comma-separated (default: 1,2); flask-sse and the floor: one")
    parser.add_argument("--clients", type=int, default=2,
                        help="storm mode: watchers' processes sharing the N (default: 2)")
    parser.add_argument("--concurrency", type=int, default=500,
                        help="storm mode: connections each watchers' process opens at once "
                             "(default: 500)")
    parser.add_argument("--send-at", type=float, default=1.0,
                        help="storm mode: seconds into the storm of its send (default: 1)")
    parser.add_argument("--later-sends", type=int, default=3,
                        help="storm mode: sends 1 s apart once all are live (default: 3)")
    parser.add_argument("--events", type=int, default=20,
                        help="commit mode: measured events per N (default: 20)")
    parser.add_argument("--only",
                        help="measure these subjects only, comma-separated: sendauth, "
                             "flask-sse, floor (the floor: send mode only)")
    parser.add_argument("--memory-detail", action="store_true",
                        help="the dashboard's worker traces its allocations (PYTHONTRACEMALLOC, "
                             "slow) and reports where its memory is once N watchers are open")
    parser.add_argument("--profile", nargs="?", const="python", choices=("python", "native"),
                        help="sample the (first) worker with py-spy during the measured "
                             "events, 'native' with C frames (adds overhead: for finding "
                             "costs, not for the table)")
    args = parser.parse_args(argv)
    known = {"sendauth", "flask-sse", "floor"}
    if args.only and not set(args.only.split(",")) <= known:
        parser.error(f"--only: of {', '.join(sorted(known))}")
    if not set(filter(None, args.stores.split(","))) <= {"sqlite", "postgres"}:
        parser.error("--stores: of sqlite, postgres")
    if args.mode == "send":
        from . import fanout_e2e

        fanout_e2e.run(args)
    elif args.mode == "storm":
        from . import storm

        storm.run(args)
    else:
        run_commit(args)


def run_commit(args):
    sizes = [int(n) for n in args.watchers.split(",")]
    only = set(args.only.split(",")) if args.only else {"sendauth", "flask-sse"}
    common.raise_open_files_limit()
    folder = common.run_folder("fanout")
    redis = common.redis_client()
    report = common.Report(
        "fanout", "N watchers on one gunicorn gevent worker: commit to last watcher reading",
        {"watchers": sizes, "events": args.events, "warmup_events": WARMUP_EVENTS,
         "store": "PostgreSQL + Redis (flask-sse: Redis)"})
    prefix = common.redis_prefix("fanout")
    commits = Commits()
    with common.database("postgres", "fanout", folder) as url:
        dashboard = Dashboard(url, folder, prefix, commits, redis, args.memory_detail)
        dashboard.publish(0)  # learn the size of an event's message
        flask_sse = FlaskSse(folder, prefix, redis, dashboard.message_bytes)
        subjects = [s for s in (dashboard, flask_sse) if s.name in only]
        for watchers in sizes:
            rows = {}
            for subject in subjects:
                print(f"fanout: {subject.name}, {watchers} watchers", flush=True)
                row = measure(subject, watchers, args.events, report, args.profile)
                row["store"] = "PostgreSQL+Redis" if subject is dashboard else "Redis"
                rows[subject.name] = row
                print(f"  last watcher p50 {get('last', 'p50')(row)} ms, p99 "
                      f"{get('last', 'p99')(row)} ms, {row.get('kib_per_watcher')} KiB/watcher",
                      flush=True)
                common.print_profile(row)
            ours, theirs = rows.get("sendauth"), rows.get("flask-sse")
            if ours and theirs and ours["last"].get("p99") and theirs["last"].get("p99"):
                ours["ratio_p99"] = round(theirs["last"]["p99"] / ours["last"]["p99"], 2)
                if ours["kib_per_watcher"] > 0:
                    ours["ratio_memory"] = round(
                        theirs["kib_per_watcher"] / ours["kib_per_watcher"], 2)
        runtime(dashboard.app).broker.stop()
    report.note("latency: commit (or publish, for flask-sse) to the last of N watchers reading "
                "the event; watchers are one asyncio process on the same 2 cores")
    report.finish(COLUMNS)


if __name__ == "__main__":
    main()
