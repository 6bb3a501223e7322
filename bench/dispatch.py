"""Benchmark 4, dispatch: how fast the outbox drains to PagerDuty, and how it behaves at
PagerDuty's rate limit.

- throughput: M deliveries queued at once (transactions created through the app's services),
  then `flask --app wsgi worker` processes (8 sends at a time each) drain them to the fake,
  which answers at once; events per second over the span of arrivals. SQLite with one worker,
  PostgreSQL with one and with two workers (claims with FOR UPDATE SKIP LOCKED);
- rate limit: the fake enforces PagerDuty's documented limit, 120 events per 60 s per
  integration key (429 "throttle event", no Retry-After, as PagerDuty documents), and a burst of
  more deliveries than that is queued for one key. Counted: attempts (requests the fake got),
  429s, deliveries sent, failed or still queued, incidents, duplicates, and how long until all
  were accepted against the earliest the limit allows.

Run: `make bench-dispatch` (or `.venv/bin/python -m bench.dispatch --part throughput`).
"""
import argparse
import threading
import time
from collections import Counter

from sqlalchemy import create_engine, func, select, text

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery
from sendauth_dashboard.services.people import accounts
from sendauth_dashboard.services.requests import transactions

from . import common
from .common import get
from .fakes import PAGERDUTY_EVENTS_PER_WINDOW, PAGERDUTY_WINDOW_SECONDS, BenchPagerDuty

BATCH = 50


def queue_deliveries(app, count):
    """``count`` transactions (so ``count`` PagerDuty deliveries), committed in batches."""
    with app.app_context():
        requestor = accounts.find_by_email(common.REQUESTOR)
        for n in range(count):
            transactions.create(requestor=requestor, user_email=common.MEMBER,
                                message=f"Dispatch benchmark {n}: please confirm it is you",
                                context=f"Ticket #{6000 + n}")
            if n % BATCH == BATCH - 1:
                db.session.commit()
        db.session.commit()


def outbox(app):
    with app.app_context():
        rows = db.session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        return {status: count for status, count in rows}


def drain(kind, folder, fake, label, deliveries, workers, timeout, profile=False, **settings):
    """Queue, start the workers, wait until every delivery is accepted (or the deadline).
    ``profile``: py-spy samples the first worker meanwhile; its summary is returned too.
    ``settings``: more SENDAUTH_ settings for the workers."""
    with common.database(kind, f"dispatch_{label}", folder) as url:
        app = common.driver_app(url, folder)
        common.seed_people(app)
        queue_deliveries(app, deliveries)
        env = common.environment(folder, SQLALCHEMY_DATABASE_URI=url,
                                 PAGERDUTY_EVENTS_URL=fake.url, BASE_URL="http://sendauth.test",
                                 **settings)
        received_before = len(fake.received)
        started = time.monotonic()
        processes = [common.dispatcher(env, folder, f"dispatch-{label}-{n}")
                     for n in range(workers)]
        profiler = common.Profile(processes[0].process.pid, f"dispatch-{label}") \
            if profile else None
        sampler = WaitSampler(url) if kind == "postgres" else None
        try:
            if sampler:
                sampler.__enter__()
            if profiler:
                profiler.__enter__()
            try:
                fake.wait_for(lambda f: _accepted(f, received_before) >= deliveries, timeout)
            except AssertionError:
                pass
            if profiler:
                profiler.__exit__(None, None, None)
        finally:
            if sampler:
                sampler.__exit__(None, None, None)
            codes = [process.stop() for process in processes]
        finished = time.monotonic()
        received = list(fake.received)[received_before:]
        state = outbox(app)
        with app.app_context():
            db.engine.dispose()
    if any(codes):
        raise RuntimeError(f"dispatcher exit codes {codes}; see {folder}")
    waits = sampler.summary() if sampler else None
    return received, state, started, finished, profiler.summary() if profiler else None, waits


class WaitSampler:
    """What the dispatchers' PostgreSQL sessions are doing, sampled every 20 ms: running,
    waiting for a lock (which one), or idle in a database transaction while the client works."""

    def __init__(self, url):
        # AUTOCOMMIT: each query sees a fresh snapshot of pg_stat_activity
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT")
        self.counts = Counter()
        self.samples = 0
        self._stop = threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.engine.dispose()

    def _run(self):
        query = text("SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                     "AND state <> 'idle'")
        with self.engine.connect() as connection:
            while not self._stop.wait(0.02):
                self.samples += 1
                for state, kind, name in connection.execute(query):
                    what = f"{state}: waiting for {kind} {name}" if kind else f"{state}"
                    self.counts[what] += 1

    def summary(self):
        """Average number of sessions in each state (busy sessions per sample)."""
        return {what: round(count / max(1, self.samples), 2)
                for what, count in self.counts.most_common(6)}


def _accepted(fake, since):
    return sum(1 for r in fake.received[since:] if r.status == 202)


def arrivals(fake, received):
    keys = {r.body["dedup_key"] for r in received if r.status == 202}
    return sorted(fake.arrivals[key] for key in keys)


def throughput(args, folder, report):
    fake = BenchPagerDuty().start()
    setups = [("sqlite", 1), ("postgres", 1), ("postgres", 2)]
    try:
        for round_ in range(args.rounds):
            for kind, workers in setups:
                label = f"{kind}{workers}_{round_}"
                print(f"dispatch: {args.deliveries} deliveries, {kind}, {workers} worker(s), "
                      f"round {round_ + 1}", flush=True)
                received, state, started, _, profile, waits = drain(
                    kind, folder, fake, label, args.deliveries, workers, timeout=180,
                    profile=args.profile,
                    # The outbox's own pace: this fake has no rate limit, so neither do the
                    # workers (with PagerDuty's window, 300 would take 2.5 minutes).
                    DELIVERY_RATE_LIMITS="{}")
                times = arrivals(fake, received)
                span = times[-1] - times[0] if len(times) > 1 else None
                per_key = Counter(r.body["dedup_key"] for r in received)
                row = report.add(
                    part="throughput", database=kind, workers=workers, round=round_ + 1,
                    deliveries=args.deliveries, attempts=len(received),
                    incidents=len(times), duplicates=sum(c - 1 for c in per_key.values()),
                    events_per_second=round((len(times) - 1) / span, 1) if span else None,
                    seconds_to_first=round(times[0] - started, 2) if times else None,
                    seconds_to_last=round(times[-1] - started, 2) if times else None,
                    outbox=state)
                if profile:
                    row["profile"] = profile
                if waits:
                    row["postgres_sessions"] = waits
                    print(f"  PostgreSQL sessions (average count): {waits}", flush=True)
                print(f"  {row['events_per_second']} events/s; {row['incidents']} incidents, "
                      f"{row['duplicates']} duplicates", flush=True)
                common.print_profile(row)
    finally:
        fake.stop()


def rate_limit(args, folder, report):
    fake = BenchPagerDuty(rate_limit=PAGERDUTY_EVENTS_PER_WINDOW,
                          window_seconds=PAGERDUTY_WINDOW_SECONDS,
                          retry_after=args.retry_after).start()
    try:
        print(f"dispatch: {args.burst} deliveries for one key against "
              f"{PAGERDUTY_EVENTS_PER_WINDOW} events per {PAGERDUTY_WINDOW_SECONDS:g} s"
              f"{' (429s carry Retry-After)' if args.retry_after else ''}", flush=True)
        received, state, started, finished, _, _ = drain(
            "postgres", folder, fake, "limit", args.burst, 1, timeout=args.limit_timeout)
        times = arrivals(fake, received)
        statuses = Counter(r.status for r in received)
        per_key = Counter(r.body["dedup_key"] for r in received)
        accepted_at = sorted(fake.accepted_at[key] for key in
                             {r.body["dedup_key"] for r in received if r.status == 202})
        # The earliest the limit lets the last one in: each window admits 120 more.
        windows_needed = (args.burst - 1) // PAGERDUTY_EVENTS_PER_WINDOW
        row = report.add(
            part="rate limit", database="postgres", workers=1, deliveries=args.burst,
            retry_after_sent=args.retry_after,
            attempts=len(received), accepted=statuses.get(202, 0),
            throttled=statuses.get(429, 0), other=len(received) - statuses.get(202, 0)
            - statuses.get(429, 0),
            attempts_per_delivery=round(len(received) / args.burst, 2),
            max_attempts_one_delivery=max(per_key.values()) if per_key else 0,
            incidents=len(times),
            duplicates=sum(1 for r in received if r.status == 202) - len(times),
            seconds_to_all_accepted=round(accepted_at[-1] - started, 1)
            if len(accepted_at) == args.burst else None,
            earliest_possible_seconds=round(windows_needed * PAGERDUTY_WINDOW_SECONDS, 1),
            seconds_waited=round(finished - started, 1),
            outbox=state)
        print(f"  {row['attempts']} attempts for {args.burst} deliveries: {row['accepted']} "
              f"accepted, {row['throttled']} throttled; outbox {state}", flush=True)
    finally:
        fake.stop()


THROUGHPUT_COLUMNS = [
    ("part", get("part")),
    ("database", get("database")),
    ("workers", get("workers")),
    ("round", get("round")),
    ("deliveries", get("deliveries")),
    ("attempts", get("attempts")),
    ("incidents", get("incidents")),
    ("duplicates", get("duplicates")),
    ("events/s", get("events_per_second")),
    ("s to last", get("seconds_to_last")),
    ("load", get("load_1min")),
]
LIMIT_COLUMNS = [
    ("part", get("part")),
    ("deliveries", get("deliveries")),
    ("attempts", get("attempts")),
    ("202", get("accepted")),
    ("429", get("throttled")),
    ("attempts/delivery", get("attempts_per_delivery")),
    ("max on one", get("max_attempts_one_delivery")),
    ("incidents", get("incidents")),
    ("duplicates", get("duplicates")),
    ("s to all accepted", get("seconds_to_all_accepted")),
    ("earliest possible s", get("earliest_possible_seconds")),
    ("outbox", lambda row: ", ".join(f"{k} {v}" for k, v in sorted(row["outbox"].items()))),
    ("load", get("load_1min")),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Outbox throughput and PagerDuty's rate limit")
    parser.add_argument("--part", choices=("throughput", "limit", "all"), default="all")
    parser.add_argument("--deliveries", type=int, default=300, help="throughput: queued at once")
    parser.add_argument("--rounds", type=int, default=2, help="throughput: rounds per set-up")
    parser.add_argument("--burst", type=int, default=180,
                        help="rate limit: deliveries queued at once for one key")
    parser.add_argument("--retry-after", action="store_true",
                        help="rate limit: the fake's 429s say when to retry (PagerDuty's don't)")
    parser.add_argument("--profile", action="store_true",
                        help="throughput: sample the first worker with py-spy (adds overhead)")
    parser.add_argument("--limit-timeout", type=float, default=240.0,
                        help="rate limit: seconds to wait for every delivery to be accepted")
    args = parser.parse_args(argv)
    folder = common.run_folder("dispatch")
    report = common.Report(
        "dispatch", "outbox to PagerDuty fake: throughput, and the 120 events/min limit",
        {"deliveries": args.deliveries, "rounds": args.rounds, "burst": args.burst,
         "limit": f"{PAGERDUTY_EVENTS_PER_WINDOW} per {PAGERDUTY_WINDOW_SECONDS:g} s per key",
         "retry_after_sent": args.retry_after, "worker_concurrency": 8})
    if args.part in ("throughput", "all"):
        throughput(args, folder, report)
    if args.part in ("limit", "all"):
        rate_limit(args, folder, report)
    report.finish({"throughput": THROUGHPUT_COLUMNS, "rate limit": LIMIT_COLUMNS})


if __name__ == "__main__":
    main()
