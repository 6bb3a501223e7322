"""Benchmark 6, the overview pages at 1,000,000 transactions: `/insights` for 90 days (for a
reader in UTC and one in New York, whose 90 days include a change of the clocks), and the home
page of a reviewer and of an admin.

The rows are made by the database (one INSERT ... SELECT over a series of numbers per table):
1,000,000 transactions from 20 requestors to 200 users, spread evenly over the last 90 days
(`--days 365` spreads them over a year), nearly all finished, each answered 5 to 285 seconds
after it was sent; one delivery each (PagerDuty, email, SMS, Slack in turn, one in 17 failed,
the rest sent 1 to 9 seconds after being queued); and `--events` events each (1 by default).
The per-day tallies insights read (services/reports/tallies.py) are then counted from those
rows, as the migration does, for UTC's days and for New York's two offsets: each is timed, as
what a reader in a new time zone waits once. Served by gunicorn (gevent, one worker) as `make
serve` runs it; timings are client-side over loopback, with the worker's CPU time per request
read from /proc.

Run: `make bench-insights` (or `.venv/bin/python -m bench.insights --database postgres`).
"""
import argparse
import time

from sqlalchemy import select, text

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, Transaction, utcnow
from sendauth_dashboard.services.people import accounts
from sendauth_dashboard.services.reports import tallies

from . import common
from .common import get
from .listing import SQL, people

ADMIN = "ada@example.com"
DAYS = 90  # the transactions are spread over this many days, unless --days says otherwise
EVENTS_PER_TRANSACTION = 1
NEW_YORK = "America/New_York"
NEW_YORK_OFFSETS = (-300, -240)  # minutes: winter and summer


def insert_transactions_sql(dialect, spacing):
    sql = SQL[dialect]
    plus = sql["plus"]
    return f"""
{sql["numbers"]}
INSERT INTO transactions (id, public_id, requestor_id, user_id, message, context, status,
                          token_hash, created_at, expires_at, completed_at)
SELECT :first + t.i, 'bench' || {sql["digits"].format(width=17, value="t.i")}, r.id, u.id,
       'Please confirm the password reset you asked for (ticket #' || t.i || ')',
       'Ticket #' || t.i, t.status, {sql["digits"].format(width=64, value="t.i")}, t.created,
       {plus.format(time="t.created", seconds=300)},
       CASE WHEN t.status IN ('pending', 'expired') THEN NULL
            ELSE {plus.format(time="t.created", seconds="(5 + (t.i * 37) % 281)")} END
FROM (SELECT i, {sql["seconds_before"].format(seconds=f"{spacing} * (:count - i)")} AS created,
             CASE WHEN i >= :count - 20 THEN 'pending'
                  WHEN i % 10 = 6 THEN 'denied' WHEN i % 10 = 7 THEN 'cancelled'
                  WHEN i % 10 >= 8 THEN 'expired' ELSE 'verified' END AS status
      FROM n) AS t
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM users
      WHERE role = 'requestor') AS r ON r.k = t.i % :requestors
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM users
      WHERE role = 'member') AS u ON u.k = (t.i * 7) % :users
"""


def insert_deliveries_sql(dialect):
    plus = SQL[dialect]["plus"]
    return f"""
INSERT INTO deliveries (transaction_id, channel, status, attempts, next_attempt_at, created_at,
                        completed_at, last_error)
SELECT id,
       CASE id % 4 WHEN 0 THEN 'pagerduty' WHEN 1 THEN 'email' WHEN 2 THEN 'sms'
                   ELSE 'slack' END,
       CASE WHEN id % 17 = 0 THEN 'failed' ELSE 'sent' END, 1, created_at, created_at,
       {plus.format(time="created_at", seconds="(1 + id % 9)")},
       CASE WHEN id % 17 = 0 THEN 'Connection refused' END
FROM transactions WHERE id >= :first
"""


def insert_events_sql(dialect):
    """Ten events per transaction (:count is ten here), in the order of their transactions."""
    sql = SQL[dialect]
    data = sql["json"].format(text="""'{"status": "' || t.status || '"}'""")
    return f"""
{sql["numbers"]}
INSERT INTO events (kind, transaction_id, actor_id, data, created_at)
SELECT CASE n.i WHEN 0 THEN 'transaction.created' WHEN 1 THEN 'delivery.sent'
                WHEN 9 THEN 'transaction.' || t.status ELSE 'passkey.used' END,
       t.id, t.requestor_id, {data}, t.created_at
FROM transactions AS t CROSS JOIN n
WHERE t.id >= :first
ORDER BY t.id, n.i
"""


def bulk_insert(app, count, days=DAYS, events=EVENTS_PER_TRANSACTION):
    requestors, users = people(app)
    started = time.monotonic()
    with app.app_context():
        dialect = db.engine.dialect.name
        first_id = (db.session.scalar(select(db.func.max(Transaction.id))) or 0) + 1
        now = utcnow().replace(tzinfo=None, microsecond=0)
        spacing = days * 86400 // count
        db.session.execute(text(insert_transactions_sql(dialect, spacing)), {
            "count": count, "first": first_id, "now": now.isoformat(" "),
            "requestors": len(requestors), "users": len(users)})
        db.session.execute(text(insert_deliveries_sql(dialect)), {"first": first_id})
        db.session.execute(text(insert_events_sql(dialect)), {
            "first": first_id, "count": events})
        if dialect == "postgresql":
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('transactions', 'id'), "
                                    "(SELECT max(id) FROM transactions))"))
        db.session.commit()
        if dialect == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        events_total = db.session.scalar(select(db.func.count(Event.id)))
    return time.monotonic() - started, events_total


def count_tallies(app):
    """The tallies of the rows just inserted: UTC's days, then New York's offsets, each timed."""
    timings = {}
    with app.app_context():
        started = time.monotonic()
        tallies.refill()
        timings["UTC"] = time.monotonic() - started
        for minutes in NEW_YORK_OFFSETS:
            started = time.monotonic()
            tallies.prepare({minutes})
            timings[f"UTC{minutes // 60:+d}"] = time.monotonic() - started
        rows = db.session.scalar(select(db.func.count()).select_from(tallies.InsightTally))
    return timings, rows


COLUMNS = [
    ("request", get("request")),
    ("database", get("database")),
    ("transactions", get("transactions")),
    ("events", get("events")),
    ("n", get("latency", "n")),
    ("p50 ms", get("latency", "p50")),
    ("p99 ms", get("latency", "p99")),
    ("min", get("latency", "min")),
    ("max", get("latency", "max")),
    ("worker CPU ms", get("worker_cpu_ms")),
    ("load", get("load_1min")),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Insights and the home page at scale")
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=EVENTS_PER_TRANSACTION,
                        help="events per transaction")
    parser.add_argument("--requests", type=int, default=30, help="per page")
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--days", type=int, default=DAYS,
                        help="spread the transactions over this many days before now (90: "
                             "the 90-day insights count every one of them)")
    args = parser.parse_args(argv)
    report = common.Report(
        "insights", f"/insights (90 days) and the home page at {args.transactions:,} "
        f"transactions and {args.transactions * args.events:,} events",
        {"transactions": args.transactions, "requests": args.requests,
         "database": args.database, "days": args.days, "events": args.events,
         "serving": "gunicorn gevent, 1 worker"})
    kinds = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    for kind in kinds:
        measure(kind, args, report)
    report.note("target: p50 at most 100 ms for /insights (90 days), 150 ms for the home page")
    report.finish(COLUMNS)


def measure(kind, args, report):
    folder = common.run_folder(f"insights-{kind}")
    with common.database(kind, "insights", folder) as url:
        app = common.driver_app(url, folder)
        common.seed_people(app)
        with app.app_context():
            accounts.create_user(email=ADMIN, name="Ada Admin", role="admin",
                                 password=common.PASSWORD)
            db.session.commit()
        seconds, events_total = bulk_insert(app, args.transactions, args.days, args.events)
        report.note(f"{kind}: bulk insert of {args.transactions:,} transactions over "
                    f"{args.days} days, as many deliveries and {events_total:,} events in "
                    f"{seconds:.1f} s")
        counted, tally_rows = count_tallies(app)
        report.note(f"{kind}: tallies counted from the rows ({tally_rows:,} rows): " + ", ".join(
            f"{offset} {took:.1f} s" for offset, took in counted.items()))
        env = common.environment(folder, SQLALCHEMY_DATABASE_URI=url,
                                 BASE_URL="http://sendauth.test")
        server = common.served(env, folder, f"insights-{kind}")
        try:
            reviewer = common.signed_in(server.url, common.REVIEWER)
            admin = common.signed_in(server.url, ADMIN)
            variants = {
                "/insights?days=90, reviewer": (reviewer, "/insights?days=90&tz=UTC"),
                "/insights?days=90, New York": (reviewer, f"/insights?days=90&tz={NEW_YORK}"),
                "home, reviewer": (reviewer, "/"),
                "home, admin": (admin, "/"),
                "/insights?days=7, reviewer": (reviewer, "/insights?days=7&tz=UTC"),
            }
            timings = {name: [] for name in variants}
            cpu = {name: 0.0 for name in variants}
            worker = common.only_worker_pid(server)
            for n in range(args.requests + 3):
                for name, (browser, path) in variants.items():
                    cpu_before = common.cpu_seconds(worker)
                    started = time.perf_counter()
                    response = browser.session.get(server.url + path, timeout=60)
                    took = time.perf_counter() - started
                    response.raise_for_status()
                    if n >= 3:
                        timings[name].append(common.ms(took))
                        cpu[name] += common.cpu_seconds(worker) - cpu_before
            database = "SQLite" if kind == "sqlite" else "PostgreSQL"
            for name in variants:
                report.add(request=name, database=database, transactions=args.transactions,
                           events=events_total, latency=common.summary(timings[name]),
                           worker_cpu_ms=round(common.ms(cpu[name]) / args.requests, 1))
        finally:
            server.stop()
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
