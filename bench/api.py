"""Benchmark 7 (`make bench-api`): the API under steady load while 1,000 reviewers watch.

For each database (SQLite, PostgreSQL): the dashboard served as `make serve` serves it without
Redis (gunicorn, gevent, one worker, the dispatcher thread in it sending every request to the
PagerDuty fake), N signed-in reviewers watching the live stream (bench/sse_client.py, one
asyncio process), and an API key's script creating requests at a steady rate
(``POST /api/v1/transactions``), each followed by a status read
(``GET /api/v1/transactions/<id>``). Sends are open-loop: each is due at its time whatever
the others do, from a pool of threads; latency is from when it was sent to its answer.

Per row: the rate asked and reached, the create's and the read's p50 / p99, failures, the
client's lag behind its schedule (its own limit on these 2 cores), the load. First the steady
rate (``--rate``, 20/s) for ``--seconds`` (60), then a sweep of rates (``--sweep``) for
``--sweep-seconds`` each, stopping after the first whose create p99 passes 100 ms: the last
below it is the highest rate that holds.

Run: `make bench-api` (or `.venv/bin/python -m bench.api --watchers 100 --seconds 10
--sweep 20,40 --sweep-seconds 5 --databases sqlite` for a smoke run).
"""
import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import User
from sendauth_dashboard.services.people import api_keys

from . import common
from .common import get
from .fakes import BenchPagerDuty
from .watchers import STREAM_SETTINGS, Client, cookie_header

P99_TARGET_MS = 100
CLIENT_THREADS = 64


def make_key(app):
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.email == common.REQUESTOR))
        _, secret = api_keys.create(owner, name="bench", scopes=["transactions:read",
                                                                  "transactions:write"], days=1)
        db.session.commit()
        return secret


def steady(url, secret, rate, seconds):
    """Creates at ``rate`` per second for ``seconds``, each then read once; the latencies."""
    local = threading.local()
    creates, reads, lags, failures = [], [], [], []

    def session():
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["Authorization"] = f"Bearer {secret}"
        return local.session

    def one(n, due):
        lags.append(common.ms(max(0.0, time.monotonic() - due)))
        started = time.perf_counter()
        sent = session().post(f"{url}/api/v1/transactions", timeout=30, json={
            "user": common.MEMBER, "message": f"API benchmark {n}",
            "ticket": {"system": "bench", "id": f"B-{n}"}})
        creates.append(common.ms(time.perf_counter() - started))
        if sent.status_code != 201:
            failures.append(f"create {sent.status_code}")
            return
        started = time.perf_counter()
        read = session().get(f"{url}/api/v1/transactions/{sent.json()['id']}", timeout=30)
        reads.append(common.ms(time.perf_counter() - started))
        if read.status_code != 200:
            failures.append(f"read {read.status_code}")

    total = int(rate * seconds)
    begin = time.monotonic() + 0.2
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for n in range(total):
            due = begin + n / rate
            time.sleep(max(0.0, due - time.monotonic()))
            pool.submit(one, n, due)
    span = time.monotonic() - begin
    return {"rate": rate, "reached": round(len(creates) / span, 1), "sent": total,
            "create": common.summary(creates), "read": common.summary(reads),
            "lag": common.summary(lags), "failures": len(failures),
            "failure_kinds": sorted(set(failures))}


def block(kind, folder, fake, args, report):
    with common.database(kind, f"api_{kind}", folder) as url:
        app = common.driver_app(url, folder)
        common.seed_people(app)
        secret = make_key(app)
        env = common.environment(
            folder, SQLALCHEMY_DATABASE_URI=url, PAGERDUTY_EVENTS_URL=fake.url,
            BASE_URL="http://sendauth.test", RATELIMIT_ENABLED="false",
            DELIVERY_RATE_LIMITS='{"pagerduty": [1000000, 1]}', **STREAM_SETTINGS)
        server = common.served(env, folder, f"api-{kind}")
        client = None
        try:
            cookie = cookie_header(common.signed_in(server.url, common.REVIEWER).session)
            client = Client(server.url, "/transactions/stream", cookie, args.watchers, False)
            connected = client.next("connected", 600) or {}
            print(f"api: {kind}, {connected.get('connected')} watchers connected", flush=True)
            steady(server.url, secret, args.rate, 2)  # warm-up
            plan = [("steady", args.rate, args.seconds)] + [
                ("sweep", rate, args.sweep_seconds) for rate in args.sweep]
            for part, rate, seconds in plan:
                row = report.add(part=part, database=kind, watchers=connected.get("connected"),
                                 **steady(server.url, secret, rate, seconds))
                print(f"  {part} {rate}/s: create p50 {row['create']['p50']} ms, p99 "
                      f"{row['create']['p99']} ms; read p99 {row['read']['p99']} ms; "
                      f"failures {row['failures']}", flush=True)
                if part == "sweep" and (row["create"]["p99"] > P99_TARGET_MS
                                        or row["failures"]):
                    break
        finally:
            if client is not None:
                client.close()
            server.stop()
            with app.app_context():
                db.engine.dispose()


COLUMNS = [
    ("part", get("part")),
    ("database", get("database")),
    ("watchers", get("watchers")),
    ("rate/s", get("rate")),
    ("reached/s", get("reached")),
    ("create p50 ms", get("create", "p50")),
    ("create p99 ms", get("create", "p99")),
    ("read p50 ms", get("read", "p50")),
    ("read p99 ms", get("read", "p99")),
    ("failures", get("failures")),
    ("client lag p99 ms", get("lag", "p99")),
    ("load", get("load_1min")),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description="The API: steady creates and reads, with "
                                                 "watchers connected")
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="creates per second, steady")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sweep", default="20,40,60,80,100,120",
                        help="comma-separated rates to try after the steady run")
    parser.add_argument("--sweep-seconds", type=float, default=15.0)
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args(argv)
    args.sweep = [float(r) for r in args.sweep.split(",") if r]
    common.raise_open_files_limit()
    folder = common.run_folder("api")
    report = common.Report(
        "api", "POST /api/v1/transactions and a status read, steady, with watchers connected",
        {"watchers": args.watchers, "rate": args.rate, "seconds": args.seconds,
         "sweep": args.sweep, "sweep_seconds": args.sweep_seconds,
         "serving": "gunicorn gevent, 1 worker, dispatcher thread in it, no Redis",
         "target": "create p50 <= 15 ms and p99 <= 50 ms at 20/s; the highest rate with "
                   "create p99 <= 100 ms"})
    fake = BenchPagerDuty().start()
    try:
        for kind in args.databases.split(","):
            block(kind, folder, fake, args, report)
    finally:
        fake.stop()
    report.finish(COLUMNS)


if __name__ == "__main__":
    main()
