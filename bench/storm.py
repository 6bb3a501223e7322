"""Benchmark 1, the reconnect storm (`make bench-fanout BENCH_ARGS="--mode storm"`, issue 26):
what a restart costs, when every browser comes back at once.

For each N, on each store (SQLite, PostgreSQL) and number of gunicorn workers, the dashboard is
served as `make serve` serves it (bench/fanout_e2e.py's ``Sendauth``: gunicorn.conf.py, gevent,
the dispatcher process, Redis, PagerDuty's fake), freshly started, as after a restart:

- the watchers last read event X; three requests are sent after it (written by this process),
  which each watcher must catch up on;
- N streams of one reviewer open together with ``Last-Event-ID: X`` from ``--clients`` asyncio
  processes (bench/sse_client.py), ``--concurrency`` connections being opened at once in each;
- ``--send-at`` s after the first connection began, the requestor makes the real
  ``POST /transactions/new``; then ``--later-sends`` more, 1 s apart, once all are live.

Per row: the seconds from the first connection until every watcher is live (has read the last
of the missed events), the storm's send (its POST; its event's last watcher, from before the
POST and after all were live), the later sends' median POST and last watcher, the web worker's
CPU per stream opened (its CPU time from /proc, from before the storm until all were live,
divided by N: the send's few milliseconds included), and whether every watcher read every event
since X, in order.
"""
import time

import requests

from sendauth_dashboard.extensions import db
from sendauth_dashboard.services.people import accounts
from sendauth_dashboard.services.requests import transactions

from . import common
from .common import get
from .fanout_e2e import Sendauth, cpu_of
from .send import send_form
from .watchers import Client

MISSED_EVENTS = 3
LIVE_TIMEOUT = 180.0


def miss_events(subject, count=MISSED_EVENTS):
    """Requests sent while the watchers were away: returns (the id they resume from, the last
    transaction event they must catch up to)."""
    resume_from = subject.latest_event_id()
    with subject.app.app_context():
        requestor = accounts.find_by_email(common.REQUESTOR)
        for n in range(count):
            form = send_form(900 + n)
            transactions.create(requestor=requestor, user_email=form["user"],
                                message=form["message"], context=form["context"])
            db.session.commit()
    subject.after = resume_from
    return resume_from, max(subject.expected_ids())


def read_by_all(clients, event_id, watchers, timeout):
    """When the last of ``watchers`` read ``event_id`` (CLOCK_MONOTONIC), or None at the
    deadline; and how many had."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = [client.status(event_id) for client in clients]
        count = sum(status["count"] for status in statuses)
        if count >= watchers:
            return max(status["last"] for status in statuses if status["last"]), count
        if time.monotonic() > deadline:
            return None, count
        time.sleep(0.05)


def storm(subject, watchers, args, report):
    """One storm on a fresh server; the row. Each worker takes connections beyond its share
    of the N (gunicorn's worker_connections, 10,000 by default), so the requestor's are served
    too: the caps are a column of the README's table, not what is measured here."""
    subject.settings["WORKER_CONNECTIONS"] = watchers + 100
    subject.start(f"storm-w{subject.workers}-{watchers}")
    row = {"store": subject.store_name, "workers": subject.workers, "watchers": watchers,
           "clients": args.clients}
    clients = []
    try:
        resume_from, caught_up = miss_events(subject)
        pids = subject.pids()
        cpu_before = cpu_of(pids)
        share, rest = divmod(watchers, args.clients)
        options = ["--last-event-id", str(resume_from), "--concurrency", str(args.concurrency)]
        for n in range(args.clients):
            clients.append(Client(subject.server.url,
                                  f"/transactions/stream?after={resume_from}", subject.cookie,
                                  share + (n < rest), headers_first=True, options=options))
        began = min(client.next("started", 60)["started"] for client in clients)
        time.sleep(max(0.0, began + args.send_at - time.monotonic()))
        sent_at, post, send_id = subject.send()
        opened = [client.next("connected", 600) for client in clients]
        if None in opened:
            raise TimeoutError(f"{watchers} watchers not connected within 600 s")
        open_ = sum(one["connected"] for one in opened)
        row.update(connected=open_, failed=sum(one["failed"] for one in opened),
                   connect_seconds=max(one["seconds"] for one in opened))
        live_at, live_count = read_by_all(clients, caught_up, open_, LIVE_TIMEOUT)
        cpu = cpu_of(pids) - cpu_before
        send_last, send_count = read_by_all(clients, send_id, open_, LIVE_TIMEOUT)
        if live_at is None or send_last is None:
            report.note(f"{subject.store_name} N={watchers}: {live_count} caught up and "
                        f"{send_count} read the storm's send, of {open_}, within "
                        f"{LIVE_TIMEOUT:g} s")
        row.update(
            all_live_s=round(live_at - began, 3) if live_at else None,
            send_post_ms=round(common.ms(post), 1),
            send_last_ms=round(common.ms(send_last - sent_at), 1) if send_last else None,
            send_after_live_ms=round(common.ms(send_last - live_at), 1)
            if send_last and live_at else None,
            worker_cpu_ms_per_stream=round(common.ms(cpu) / watchers, 3),
            worker_cpu_s=round(cpu, 2))
        row.update(_later_sends(subject, clients, open_, args.later_sends))
        row["delivery"] = _check(subject, clients)
    finally:
        for client in clients:
            client.close()
        subject.stop()
    return report.add(**row)


def _later_sends(subject, clients, watchers, count):
    """Sends once the storm has settled, 1 s apart: their median POST and last watcher."""
    posts, lasts = [], []
    for _ in range(count):
        try:
            sent_at, post, event_id = subject.send()
        except requests.RequestException as exc:
            return {"later_sends_failed": f"{exc.__class__.__name__}: {exc}"[:300]}
        last, _ = read_by_all(clients, event_id, watchers, 60)
        posts.append(common.ms(post))
        if last is not None:
            lasts.append(common.ms(last - sent_at))
        time.sleep(max(0.0, sent_at + 1.0 - time.monotonic()))
    return {"later_post_ms": common.summary(posts), "later_last_ms": common.summary(lasts)}


def _check(subject, clients):
    """Every watcher read every transaction event since it resumed, in order."""
    checks = [client.check() for client in clients]
    read = set().union(*(check["ids"] for check in checks))
    missing = sorted(subject.expected_ids() - read)
    incomplete = {key for check in checks for key in check["incomplete"]}
    out_of_order = sum(check["out_of_order"] for check in checks)
    return {"events": len(read), "missing": missing[:20], "missing_count": len(missing),
            "incomplete": sorted(incomplete)[:20], "out_of_order": out_of_order,
            "ok": not missing and not incomplete and not out_of_order}


def _checked(row):
    delivery = row.get("delivery") or {}
    if not delivery:
        return None
    if delivery["ok"]:
        return "ok"
    return (f"missing {delivery['missing_count']}, incomplete {len(delivery['incomplete'])}, "
            f"out of order {delivery['out_of_order']}")


COLUMNS = [
    ("store", get("store")),
    ("workers", get("workers")),
    ("N", get("watchers")),
    ("open", get("connected")),
    ("all live s", get("all_live_s")),
    ("storm send POST ms", get("send_post_ms")),
    ("its last watcher ms", get("send_last_ms")),
    ("after all live ms", get("send_after_live_ms")),
    ("CPU ms/stream", get("worker_cpu_ms_per_stream")),
    ("later POST ms", get("later_post_ms", "p50")),
    ("later last ms", get("later_last_ms", "p50")),
    ("every event, in order", _checked),
    ("load", get("load_1min")),
]


def run(args):
    """``--mode storm``: the table of issue 26."""
    from contextlib import ExitStack

    from .fakes import BenchPagerDuty

    sizes = [int(n) for n in args.watchers.split(",")]
    stores = [s for s in args.stores.split(",") if s]
    workers = [int(n) for n in args.workers.split(",")]
    common.raise_open_files_limit()
    folder = common.run_folder("storm")
    report = common.Report(
        "storm", "N streams reconnecting at once with Last-Event-ID, a send during the storm",
        {"watchers": sizes, "stores": stores, "workers": workers, "clients": args.clients,
         "concurrency": args.concurrency, "send_at_s": args.send_at,
         "missed_events": MISSED_EVENTS, "later_sends": args.later_sends})
    fake = BenchPagerDuty().start()
    try:
        with ExitStack() as stack:
            for store in stores:
                url = stack.enter_context(common.database(store, f"storm_{store}", folder))
                app = common.driver_app(url, folder)
                common.seed_people(app)
                stack.callback(_dispose, app)
                for count in workers:
                    for watchers in sizes:
                        print(f"storm: {store}, {count} worker(s), {watchers} watchers",
                              flush=True)
                        row = storm(Sendauth(store, url, app, folder, fake, count), watchers,
                                    args, report)
                        print(f"  all live {row.get('all_live_s')} s; send POST "
                              f"{row.get('send_post_ms')} ms, last watcher "
                              f"{row.get('send_last_ms')} ms; "
                              f"{row.get('worker_cpu_ms_per_stream')} ms CPU/stream; "
                              f"{_checked(row)}", flush=True)
    finally:
        fake.stop()
    report.note("times from the first connection's start (all live) and from just before the "
                "POST (its last watcher); CPU: the web workers' from before the storm until "
                "all were live, / N; the watchers' processes share the same cores")
    report.finish(COLUMNS)


def _dispose(app):
    with app.app_context():
        db.engine.dispose()
