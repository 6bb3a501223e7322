"""Benchmark 1, fan-out end to end (`make bench-fanout`, ``--mode send``): from the requestor's
click to the last watcher's screen (issue 18).

For each N, on each store (SQLite, PostgreSQL) and each number of gunicorn workers:

- the dashboard served as `make serve` serves it (`gunicorn -c gunicorn.conf.py`, gevent; the
  app is ``bench.instrumented:app``, the product's app plus response headers naming the events
  a request wrote), with the dispatcher as gunicorn.conf.py runs it by default, the Redis
  broker, and PagerDuty configured against the fake: every send queues a real delivery (the
  member's messaging preferences are PagerDuty);
- N signed-in reviewers watch (bench/sse_client.py, one asyncio process); with several workers
  the kernel spreads their connections, and events reach the other workers through Redis;
- a signed-in requestor makes the real ``POST /transactions/new`` of the send form, several
  times about ``--interval`` s apart after warm-ups. For each send, t0 is just before the POST;
  the POST's own duration; and, for the ``transaction.created`` event it wrote, when the first,
  the median, the 99th-percentile and the last watcher read it, from t0;
- at the end every watcher must have read every transaction event since it connected, in order
  (the ids the watchers read against the events table), and the fake the run's incidents.

Per row: the median send (by its p99) with its p50 / p99 / last watcher, the median POST, and
the worst send (the latest last watcher of all sends). Memory: the web workers' RSS after minus
before the watchers, / N; CPU per measured send: the web workers', and the dispatcher process's
when gunicorn.conf.py runs one (with the dispatcher in the workers, theirs includes it).

Next to it in the same run, the same client and measurements against flask-sse (its bare publish
to Redis of a message the size of the dashboard's frame, timed from just before the publish) and
the floor (bench/floor.py: one gevent loop writing one pre-encoded frame of that size to the N
sockets, timed from just before the POST that triggers it).
"""
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from sqlalchemy import select

from sendauth_dashboard.core import event_log
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, Transaction
from sendauth_dashboard.services.live import messages, wire
from sendauth_dashboard.services.people import accounts
from sendauth_dashboard.services.requests import transactions
from tests.support import servers

from . import common
from .common import get
from .fakes import BenchPagerDuty
from .headers import COMMITTED_AT, EVENTS
from .send import send_form
from .watchers import STREAM_SETTINGS, Client, FlaskSse, cookie_header

WARMUP_SENDS = 2  # with all N watchers open, before the measured sends
EVENT_TIMEOUT = 60.0
STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


# -- what is measured ---------------------------------------------------------------------------

class Sendauth:
    """The dashboard on one store with ``workers`` gunicorn workers; a send is the form's POST."""

    name = "sendauth"
    headers_first = True

    def __init__(self, store, url, app, folder, fake, workers, memory_detail=False):
        self.store = store
        self.store_name = f"{STORE_NAMES[store]}+Redis"
        self.database_url = url
        self.app = app  # this process's, to read the events table
        self.folder = folder
        self.fake = fake
        self.workers = workers
        self.memory_detail = memory_detail
        self.sent = 0
        self.settings = {}  # more SENDAUTH_* settings for the server (bench/storm.py)

    def start(self, label):
        env = common.environment(
            self.folder, SQLALCHEMY_DATABASE_URI=self.database_url, REDIS_URL=common.REDIS_URL,
            REDIS_CHANNEL_PREFIX=common.redis_prefix("fanout"), PAGERDUTY_EVENTS_URL=self.fake.url,
            BASE_URL="http://sendauth.test", **STREAM_SETTINGS, **self.settings)
        if self.memory_detail:
            env["PYTHONTRACEMALLOC"] = "1"
        self.server = common.served(env, self.folder, f"{self.name}-{self.store}-{label}",
                                    app="bench.instrumented:app", workers=self.workers)
        self.cookie = cookie_header(common.signed_in(self.server.url, common.REVIEWER).session)
        self.requestor = common.signed_in(self.server.url, common.REQUESTOR)
        self.token = self.requestor.token("/transactions/new")

    def pids(self):
        """gunicorn's web workers."""
        return gunicorn_children(self.server)[0]

    def helper_pids(self):
        """gunicorn's other children: the dispatcher process, when gunicorn.conf.py runs one."""
        return gunicorn_children(self.server)[1]

    def path(self):
        """The stream from the latest event on: the watchers replay nothing."""
        self.after = self.latest_event_id()
        return f"/transactions/stream?after={self.after}"

    def latest_event_id(self):
        with self.app.app_context():
            return event_log.latest_event_id()

    def wait_subscribed(self, watchers, timeout):
        """Each watcher has its answer's headers, sent after it subscribed: nothing to wait for."""

    def send(self):
        """The requestor's POST of the send form; (t0, its seconds, transaction.created's id).
        ``self.committed_at``: when the view's last commit was (the response's header)."""
        self.sent += 1
        data = {"csrf_token": self.token, **send_form(self.sent)}
        session = self.requestor.session
        started = time.monotonic()
        response = session.post(f"{self.server.url}/transactions/new", data=data,
                                allow_redirects=False, timeout=60)
        took = time.monotonic() - started
        if response.status_code != 302:
            raise RuntimeError(f"send {self.sent}: HTTP {response.status_code}: "
                               f"{response.text[:300]}")
        committed_at = response.headers.get(COMMITTED_AT)
        self.committed_at = float(committed_at) if committed_at else None
        written = dict(item.split(":", 1)[::-1] for item in
                       response.headers.get(EVENTS, "").split(",") if item)
        if "transaction.created" in written:
            return started, took, int(written["transaction.created"])
        return started, took, self.created_event_id(response.headers["Location"])

    def created_event_id(self, location):
        """From the events table, when the response did not say (an app without the header)."""
        public_id = location.rstrip("/").rsplit("/", 1)[1]
        with self.app.app_context():
            return db.session.scalar(
                select(Event.id).join(Transaction, Event.transaction_id == Transaction.id)
                .where(Transaction.public_id == public_id, Event.kind == "transaction.created"))

    def expected_ids(self):
        """Every transaction event since the watchers connected: each watcher's due."""
        with self.app.app_context():
            return set(db.session.scalars(select(Event.id).where(
                Event.transaction_id.is_not(None), Event.id > self.after)))

    def memory(self):
        if not self.memory_detail:
            return None
        return requests.get(f"{self.server.url}/_bench/memory", timeout=120).json()

    def stop(self):
        self.server.stop()


class BarePublish(FlaskSse):
    """flask-sse as in commit mode; a send is its bare publish to Redis."""

    store_name = "Redis"
    workers = 1

    def __init__(self, folder, redis, frame_bytes):
        super().__init__(folder, common.redis_prefix("fanout"), redis, frame_bytes)
        self.frame_bytes = frame_bytes
        self.published = set()

    def pids(self):
        return gunicorn_children(self.server)[0]

    def helper_pids(self):
        return []

    def send(self):
        started, event_id = self.publish(None)
        self.published.add(event_id)
        return started, time.monotonic() - started, event_id

    def path(self):
        self.after = self.sequence
        return super().path()

    def expected_ids(self):
        return {event_id for event_id in self.published if event_id > self.after}


class Floor:
    """bench/floor.py: one loop writing the frame to N sockets; a send is its trigger POST."""

    name = "floor"
    store_name = "-"
    workers = 1
    headers_first = True
    cookie = ""

    def __init__(self, folder, frame_bytes):
        self.folder = folder
        self.frame_bytes = frame_bytes
        self.published = set()
        self.sequence = 0

    def start(self, label):
        port = servers.free_port()
        self.server = servers.Process(
            [sys.executable, "-m", "bench.floor", "--port", str(port),
             "--frame-bytes", str(self.frame_bytes)],
            common.environment(self.folder), self.folder / f"floor-{label}.log")
        self.server.url = f"http://127.0.0.1:{port}"
        common.wait_until(lambda: servers._healthy(self.server.url), 30, message="the floor")

    def pids(self):
        return [self.server.process.pid]

    def helper_pids(self):
        return []

    def path(self):
        self.after = self.sequence
        return "/stream"

    def wait_subscribed(self, watchers, timeout):
        """Headers come once the socket is among the loop's: nothing to wait for."""

    def send(self):
        started = time.monotonic()
        response = requests.post(f"{self.server.url}/send", timeout=60)
        took = time.monotonic() - started
        self.sequence = response.json()["id"]
        self.published.add(self.sequence)
        return started, took, self.sequence

    def expected_ids(self):
        return {event_id for event_id in self.published if event_id > self.after}

    def memory(self):
        return None

    def stop(self):
        self.server.stop()


# -- one measurement ----------------------------------------------------------------------------

def gunicorn_children(server):
    """The gunicorn master's children, whichever of its threads started them: its web workers
    (forks of the master, so ``gunicorn`` in their command line) and the others (the dispatcher
    process that gunicorn.conf.py may run, started from a thread of the master)."""
    master = server.process.pid
    workers, others = [], []
    for task in os.listdir(f"/proc/{master}/task"):
        try:
            children = Path(f"/proc/{master}/task/{task}/children").read_text().split()
        except OSError:
            continue
        for pid in map(int, children):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            is_worker = any(Path(part.decode(errors="replace")).name == "gunicorn"
                            for part in command)
            (workers if is_worker else others).append(pid)
    return sorted(workers), sorted(others)


def cpu_of(pids):
    """CPU seconds of processes; one that has ended counts nothing."""
    total = 0.0
    for pid in pids:
        try:
            total += common.cpu_seconds(pid)
        except OSError:
            pass
    return total


def open_sockets(pid):
    """Sockets a process holds (its streams, plus its listener, Redis and database)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


def measure(subject, watchers, sends, interval, report, profile=None):
    """One subject at one N on a fresh server. Returns the row."""
    label = f"w{subject.workers}-{watchers}"
    subject.start(label)
    row = {"subject": subject.name, "store": subject.store_name, "workers": subject.workers,
           "watchers": watchers}
    client = None
    try:
        _warm_up(subject)
        pids, helpers = subject.pids(), subject.helper_pids()
        row["server_processes"] = {"workers": pids, "others": helpers}
        rss_before = sum(common.rss_kib(pid) for pid in pids)
        sockets_before = [open_sockets(pid) for pid in pids]
        client = Client(subject.server.url, subject.path(), subject.cookie, watchers,
                        subject.headers_first)
        connected = client.next("connected", 600)
        if connected is None:
            raise TimeoutError(f"{watchers} watchers not connected within 600 s")
        subject.wait_subscribed(connected["connected"], 120)
        row.update(connected=connected["connected"], failed=connected["failed"],
                   connect_seconds=connected["seconds"])
        time.sleep(1.0)  # the last connections settle before memory is read
        row["sockets_added_per_process"] = [
            open_sockets(pid) - before for pid, before in zip(pids, sockets_before, strict=True)]
        rss_connected = sum(common.rss_kib(pid) for pid in pids)
        memory = subject.memory()
        if memory:
            row["memory_detail"] = memory
        for _ in range(WARMUP_SENDS):
            _, _, event_id = subject.send()
            client.wait_event(event_id, EVENT_TIMEOUT)
            time.sleep(interval / 2)
        profiler = common.Profile(pids[0], f"fanout-{subject.name}-{label}",
                                  native=profile == "native") if profile else None
        if profiler:
            profiler.__enter__()
        cpu_before, helpers_cpu_before = cpu_of(pids), cpu_of(helpers)
        measured = []
        for n in range(sends):
            started, took, event_id = subject.send()
            seen = client.wait_event(event_id, EVENT_TIMEOUT)
            one = {"event": event_id, "post_ms": round(common.ms(took), 2),
                   "count": seen.get("count")}
            if getattr(subject, "committed_at", None):  # the dashboard's: t0 to its commit
                one["commit_ms"] = round(common.ms(subject.committed_at - started), 2)
            if "event" in seen:
                one.update({key: round(common.ms(seen[key] - started), 2)
                            for key in ("first", "p50", "p99", "last")})
            if one["count"] != connected["connected"]:
                report.note(f"{subject.name} {subject.store_name} w={subject.workers} "
                            f"N={watchers}: send {n + 1}'s event {event_id} reached "
                            f"{one['count']} of {connected['connected']} watchers within "
                            f"{EVENT_TIMEOUT:g} s")
            measured.append(one)
            time.sleep(max(0.0, started + interval - time.monotonic()))
        cpu, helpers_cpu = cpu_of(pids) - cpu_before, cpu_of(helpers) - helpers_cpu_before
        if profiler:
            profiler.__exit__(None, None, None)
            row["profile"] = profiler.summary()
        row["delivery"] = _check_delivery(subject, client)
        rss_after = sum(common.rss_kib(pid) for pid in pids)
        if (subject.pids(), subject.helper_pids()) != (pids, helpers):
            report.note(f"{subject.name} {subject.store_name} w={subject.workers} N={watchers}: "
                        f"server processes changed from {pids} and {helpers} to "
                        f"{subject.pids()} and {subject.helper_pids()}")
        row.update(_summarise(measured))
        row.update(
            sends=measured, frame_bytes=getattr(subject, "frame_bytes", None),
            rss_kib={"before": rss_before, "connected": rss_connected, "after": rss_after},
            kib_per_watcher=round((rss_after - rss_before) / watchers, 1),
            kib_per_watcher_connected=round((rss_connected - rss_before) / watchers, 1),
            worker_cpu_ms_per_send=round(common.ms(cpu) / max(1, sends), 1),
            dispatcher_cpu_ms_per_send=round(common.ms(helpers_cpu) / max(1, sends), 1)
            if helpers else None,
            worker_cpu_us_per_watcher_send=round(cpu * 1e6 / max(1, sends) / watchers, 1))
    finally:
        if client is not None:
            client.close()
        subject.stop()
    return report.add(**row)


def _summarise(measured):
    """The median send by its p99 (the lower middle of an even count), the worst send's last
    watcher, and the median POST."""
    reached = [one for one in measured if "p99" in one]
    if not reached:
        return {"median_send": {}, "worst_send_ms": None,
                "post_ms": common.summary([one["post_ms"] for one in measured])}
    by_p99 = sorted(reached, key=lambda one: one["p99"])
    return {"median_send": by_p99[(len(by_p99) - 1) // 2],
            "worst_send_ms": max(one["last"] for one in reached),
            "post_ms": common.summary([one["post_ms"] for one in measured])}


def _check_delivery(subject, client, timeout=20.0):
    """Every watcher read every event due since it connected, in order: ids missing from what
    the watchers read, ids fewer than all read, and reads out of order. Waits for the events of
    the last send (its delivery) to settle."""
    deadline = time.monotonic() + timeout
    while True:
        check = client.check()
        missing = sorted(subject.expected_ids() - set(check["ids"]))
        if (not missing and not check["incomplete"]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {"events": len(check["ids"]), "missing": missing[:20], "missing_count": len(missing),
            "incomplete": check["incomplete"], "out_of_order": check["out_of_order"],
            "watchers_out_of_order": check["watchers_out_of_order"],
            "ok": not missing and not check["incomplete"] and not check["out_of_order"]}


def _warm_up(subject):
    """Serve a few streams and events first, so one-time costs are not counted per watcher
    (ten streams per worker: the kernel may still give one worker few or none of them)."""
    watchers = 10 * subject.workers
    client = Client(subject.server.url, subject.path(), subject.cookie, watchers,
                    subject.headers_first)
    client.next("connected", 60)
    subject.wait_subscribed(watchers, 30)
    for _ in range(WARMUP_SENDS):
        _, _, event_id = subject.send()
        client.wait_event(event_id, EVENT_TIMEOUT)
    client.close()
    if isinstance(subject, BarePublish):
        subject.send()  # flask-sse notices a closed stream only when it next writes to it
    time.sleep(0.5)


def frame_bytes(app):
    """The size of a ``transaction.created`` frame as a stream sends it, for a send like the
    benchmark's: what flask-sse publishes and the floor writes."""
    form = send_form(0)
    with app.app_context():
        transaction = transactions.create(
            requestor=accounts.find_by_email(common.REQUESTOR), user_email=form["user"],
            message=form["message"], context=form["context"])
        db.session.commit()
        event = db.session.scalars(select(Event).where(
            Event.transaction_id == transaction.id, Event.kind == "transaction.created")).one()
        return len(wire.sse_format(messages.message_for(event)).encode())


def _dispose(app):
    """Close this process's connections before its database is dropped."""
    with app.app_context():
        db.engine.dispose()


# -- the run ------------------------------------------------------------------------------------

def _checked(row):
    delivery = row.get("delivery") or {}
    if delivery.get("ok"):
        return "ok"
    if not delivery:
        return None
    return (f"missing {delivery['missing_count']}, incomplete {len(delivery['incomplete'])}, "
            f"out of order {delivery['out_of_order']}")


COLUMNS = [
    ("subject", get("subject")),
    ("store", get("store")),
    ("workers", get("workers")),
    ("N", get("watchers")),
    ("open", get("connected")),
    ("POST ms", get("post_ms", "p50")),
    ("p50 ms", get("median_send", "p50")),
    ("p99 ms", get("median_send", "p99")),
    ("last ms", get("median_send", "last")),
    ("worst send", get("worst_send_ms")),
    ("every event, in order", _checked),
    ("KiB/watcher", get("kib_per_watcher")),
    ("worker CPU ms/send", get("worker_cpu_ms_per_send")),
    ("dispatcher CPU", get("dispatcher_cpu_ms_per_send")),
    ("load", get("load_1min")),
]


def run(args):
    """``--mode send``: the table of issue 18."""
    sizes = [int(n) for n in args.watchers.split(",")]
    stores = [s for s in args.stores.split(",") if s]
    workers = [int(n) for n in args.workers.split(",")]
    subjects = set(args.only.split(",")) if args.only else {"sendauth", "flask-sse", "floor"}
    common.raise_open_files_limit()
    folder = common.run_folder("fanout")
    redis = common.redis_client()
    report = common.Report(
        "fanout", "the requestor's send to the last of N watchers reading its event",
        {"mode": "send", "watchers": sizes, "stores": stores, "workers": workers,
         "sends": args.sends, "interval_s": args.interval, "warmup_sends": WARMUP_SENDS,
         "subjects": sorted(subjects), "streams": STREAM_SETTINGS})
    fake = BenchPagerDuty().start()
    try:
        with ExitStack() as stack:
            dashboards = {}  # store -> (database URL, this process's app on it)
            for store in stores or ["sqlite"]:
                url = stack.enter_context(common.database(store, f"fanout_{store}", folder))
                dashboards[store] = url, common.driver_app(url, folder)
                common.seed_people(dashboards[store][1])
                stack.callback(_dispose, dashboards[store][1])
            size = frame_bytes(next(iter(dashboards.values()))[1])
            dashboards_measured = []
            report.settings["frame_bytes"] = size
            for watchers in sizes:
                runs = []
                if "sendauth" in subjects:
                    runs += [Sendauth(store, *dashboards[store], folder, fake, count,
                                      args.memory_detail)
                             for store in stores for count in workers]
                if "flask-sse" in subjects:
                    runs.append(BarePublish(folder, redis, size))
                if "floor" in subjects:
                    runs.append(Floor(folder, size))
                dashboards_measured += [run for run in runs if isinstance(run, Sendauth)]
                for subject in runs:
                    print(f"fanout: {subject.name} {subject.store_name}, {subject.workers} "
                          f"worker(s), {watchers} watchers", flush=True)
                    row = measure(subject, watchers, args.sends, args.interval, report,
                                  args.profile)
                    send = row["median_send"]
                    print(f"  median send: p50 {send.get('p50')} ms, p99 {send.get('p99')} ms, "
                          f"last {send.get('last')} ms; POST {get('post_ms', 'p50')(row)} ms; "
                          f"worst send {row['worst_send_ms']} ms; every event in order: "
                          f"{_checked(row)}; {row['kib_per_watcher']} KiB/watcher; sockets "
                          f"added per server process {row['sockets_added_per_process']}",
                          flush=True)
                    common.print_profile(row)
            sends = 1 + sum(subject.sent for subject in dashboards_measured)  # 1: frame_bytes
            report.extra["pagerduty"] = {"sends": sends, "events_received": len(fake.received),
                                         "statuses": fake.statuses}
            if len(fake.received) < sends:
                report.note(f"PagerDuty's fake received {len(fake.received)} events for "
                            f"{sends} sends: not every send's delivery reached it")
    finally:
        fake.stop()
    report.note("times from just before the send (the POST; flask-sse: the publish; the floor: "
                "its trigger POST) to watchers reading its event; median send by p99; worst "
                "send: the latest last watcher of all sends; watchers are one asyncio process "
                "on the same cores")
    report.finish(COLUMNS)
