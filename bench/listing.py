"""Benchmark 5, the transactions list at 100,000 transactions, and a stream resume replaying 200
events.

The rows are bulk-inserted with SQL (one INSERT ... SELECT over a series of numbers per table,
not through the web): 100,000 transactions from 20 requestors to 200 users, newest last, nearly
all finished (verified, denied, cancelled, expired) and 100 pending, each with its
`transaction.created` event and, when finished, the event that finished it (about 200,000
events). Served by gunicorn (gevent, one worker) as `make serve` runs it; the timings are
client-side over loopback, and the worker's CPU time per request is read from /proc.

- the list page, `GET /transactions/` as a reviewer (the target), and for comparison: filtered by
  status (a rare one: pending), by user, and as a requestor (only their own rows); the variants
  are requested round-robin, so a change in the machine's load falls on all of them;
- the list with a text search (`?q=`, the second target): a rare word, a word in every message,
  part of people's names, a word and a person, and a requestor's search of their own rows;
- stream resume: `GET /transactions/stream?after=<id>` with 200 newer events; the time from
  sending the request to reading the 200th event.

Run: `make bench-list` (or `.venv/bin/python -m bench.listing --transactions 20000`).
"""
import argparse
import re
import socket
import time

from sqlalchemy import insert, select, text

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, Transaction, User, utcnow

from . import common
from .common import get

REQUESTORS = 20
USERS = 200
PENDING = 100


def people(app):
    """Extra requestors and users (all with the seeded requestor's password hash)."""
    with app.app_context():
        template = db.session.scalar(select(User).where(User.email == common.REQUESTOR))
        now = utcnow()
        rows = [dict(email=f"requestor{n}@example.com", name=f"Requestor {n}", role="requestor")
                for n in range(1, REQUESTORS)]
        rows += [dict(email=f"user{n}@example.com", name=f"User {n}", role="member")
                 for n in range(USERS)]
        for row in rows:
            row.update(password_hash=template.password_hash, active=True, session_version=0,
                       created_at=now, notify_pagerduty=True, notify_email=False,
                       notify_sms=False, notify_slack=False)
        db.session.execute(insert(User), rows)
        db.session.commit()
        requestors = db.session.scalars(
            select(User.id).where(User.role == "requestor").order_by(User.id)).all()
        users = db.session.scalars(
            select(User.id).where(User.role == "member").order_by(User.id)).all()
        return requestors, users


# The rows are made by the database from a series of numbers: one INSERT ... SELECT per table.
SQL = {
    "sqlite": {
        "numbers": "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
                   "WHERE i + 1 < :count)",
        "digits": "printf('%0{width}d', {value})",
        "seconds_before": "datetime(:now, printf('-%d seconds', {seconds}))",
        "plus": "datetime({time}, '+' || ({seconds}) || ' seconds')",
        "json": "{text}",
    },
    "postgresql": {
        "numbers": "WITH n(i) AS (SELECT generate_series(0, :count - 1))",
        "digits": "lpad(CAST({value} AS text), {width}, '0')",
        "seconds_before": "CAST(:now AS timestamp) - make_interval(secs => {seconds})",
        "plus": "{time} + make_interval(secs => {seconds})",
        "json": "CAST({text} AS json)",
    },
}


def insert_transactions_sql(dialect):
    sql = SQL[dialect]
    return f"""
{sql["numbers"]}
INSERT INTO transactions (id, public_id, requestor_id, user_id, message, context, status,
                          token_hash, created_at, expires_at, completed_at)
SELECT :first + t.i, 'bench' || {sql["digits"].format(width=17, value="t.i")}, r.id, u.id,
       'Please confirm the password reset you asked for (ticket #' || t.i || ')',
       'Ticket #' || t.i, t.status, {sql["digits"].format(width=64, value="t.i")}, t.created,
       CASE WHEN t.status = 'pending' THEN {sql["plus"].format(time="t.created", seconds=7200)}
            ELSE {sql["plus"].format(time="t.created", seconds=300)} END,
       CASE WHEN t.status = 'pending' THEN NULL
            ELSE {sql["plus"].format(time="t.created", seconds=40)} END
FROM (SELECT i, {sql["seconds_before"].format(seconds="30 * (:count - i)")} AS created,
             CASE WHEN i >= :count - :pending THEN 'pending'
                  WHEN i % 10 = 6 THEN 'denied' WHEN i % 10 = 7 THEN 'cancelled'
                  WHEN i % 10 >= 8 THEN 'expired' ELSE 'verified' END AS status
      FROM n) AS t
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM users
      WHERE role = 'requestor') AS r ON r.k = t.i % :requestors
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM users
      WHERE role = 'member') AS u ON u.k = (t.i * 7) % :users
"""


def insert_events_sql(dialect):
    """Each transaction's `transaction.created` and, if finished, the event that finished it,
    in the order they happened (so event ids grow with time, as the app writes them)."""
    json_ = SQL[dialect]["json"]
    created = json_.format(text="""'{"status": "pending", "channels": ["pagerduty"]}'""")
    finished = json_.format(text="""'{"status": "' || status || '"}'""")
    return f"""
INSERT INTO events (kind, transaction_id, actor_id, data, created_at)
SELECT kind, transaction_id, actor_id, data, at FROM (
    SELECT 'transaction.created' AS kind, id AS transaction_id, requestor_id AS actor_id,
           {created} AS data, created_at AS at, 0 AS step
    FROM transactions WHERE id >= :first
    UNION ALL
    SELECT 'transaction.' || status, id,
           CASE status WHEN 'expired' THEN NULL WHEN 'cancelled' THEN requestor_id
                       ELSE user_id END,
           {finished}, completed_at, 1
    FROM transactions WHERE id >= :first AND status <> 'pending'
) AS happened ORDER BY at, transaction_id, step
"""


def bulk_insert(app, count):
    """``count`` transactions and their events, oldest first, made with SQL by the database.
    Returns the seconds it took, the number of events, and the last event's id."""
    requestors, users = people(app)
    started = time.monotonic()
    with app.app_context():
        dialect = db.engine.dialect.name
        first_id = (db.session.scalar(select(db.func.max(Transaction.id))) or 0) + 1
        now = utcnow().replace(tzinfo=None, microsecond=0)
        db.session.execute(text(insert_transactions_sql(dialect)), {
            "count": count, "first": first_id, "pending": PENDING, "now": now.isoformat(" "),
            "requestors": len(requestors), "users": len(users)})
        db.session.execute(text(insert_events_sql(dialect)), {"first": first_id})
        if dialect == "postgresql":
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('transactions', 'id'), "
                                    "(SELECT max(id) FROM transactions))"))
        db.session.commit()
        if dialect == "postgresql":
            # What autovacuum does after a bulk load; SQLite is left as the product leaves it.
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        events_total = db.session.scalar(select(db.func.count(Event.id)))
        last_event = db.session.scalar(select(db.func.max(Event.id)))
    return time.monotonic() - started, events_total, last_event


def read_events(url, path, cookie, count, timeout=30):
    """Open a stream with a plain socket; seconds until ``count`` events were read."""
    host, port = url.rsplit("//", 1)[1].split(":")
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                           f"Accept: text/event-stream\r\nCookie: {cookie}\r\n\r\n".encode())
        seen, rest = 0, b""
        while seen < count:
            data = connection.recv(65536)
            if not data:
                raise RuntimeError(f"the stream ended after {seen} events")
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            seen += sum(1 for line in lines if line.startswith(b"id:"))
        return time.perf_counter() - started


def profile_list_page(server, reviewer, requests, report):
    """py-spy on the worker while it serves the reviewer's list page ``requests`` times."""
    profiler = common.Profile(common.only_worker_pid(server), "list-reviewer")
    with profiler:
        for _ in range(requests):
            reviewer.session.get(f"{server.url}/transactions/", timeout=30).raise_for_status()
    row = {"profile": profiler.summary()}
    common.print_profile(row)
    report.note(f"profile of the reviewer's list page: {row['profile']['file']}")
    report.extra["profile"] = row["profile"]


ROW_COUNT = re.compile(r"<tr data-transaction-id=")

COLUMNS = [
    ("request", get("request")),
    ("database", get("database")),
    ("transactions", get("transactions")),
    ("n", get("latency", "n")),
    ("p50 ms", get("latency", "p50")),
    ("p99 ms", get("latency", "p99")),
    ("min", get("latency", "min")),
    ("max", get("latency", "max")),
    ("IQR", lambda row: f"{row['latency']['q1']:.1f}-{row['latency']['q3']:.1f}"),
    ("rows shown", get("rows")),
    ("worker CPU ms", get("worker_cpu_ms")),
    ("load", get("load_1min")),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description="The list at 100,000 transactions; a resume")
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100, help="per list variant")
    parser.add_argument("--resumes", type=int, default=30)
    parser.add_argument("--replay", type=int, default=200, help="events a resume replays")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--profile", action="store_true",
                        help="then sample the worker with py-spy while it serves the reviewer's "
                             "list page --requests more times")
    args = parser.parse_args(argv)
    folder = common.run_folder("list")
    report = common.Report(
        "list", f"transactions list and stream resume at {args.transactions:,} transactions",
        {"transactions": args.transactions, "requests": args.requests, "resumes": args.resumes,
         "replay": args.replay, "database": args.database,
         "serving": "gunicorn gevent, 1 worker"})
    with common.database(args.database, "list", folder) as url:
        app = common.driver_app(url, folder)
        common.seed_people(app)
        seconds, events_total, last_event = bulk_insert(app, args.transactions)
        report.note(f"bulk insert: {args.transactions:,} transactions and {events_total:,} "
                    f"events in {seconds:.1f} s")
        env = common.environment(folder, SQLALCHEMY_DATABASE_URI=url,
                                 BASE_URL="http://sendauth.test",
                                 # One reviewer opens 32 resumes in a few seconds; a closed one
                                 # holds its slot until its next heartbeat (README, streams).
                                 STREAMS_PER_USER=1000)
        server = common.served(env, folder, "list")
        try:
            reviewer = common.signed_in(server.url, common.REVIEWER)
            requestor = common.signed_in(server.url, "requestor1@example.com")
            variants = {
                "list, reviewer": (reviewer, "/transactions/"),
                "list, ?status=pending": (reviewer, "/transactions/?status=pending"),
                "list, ?user=": (reviewer, "/transactions/?user=user7%40example.com"),
                "list, requestor's own": (requestor, "/transactions/"),
                # Text search (the target): a rare word (a ticket number: 14 rows match), a word
                # in every message, part of people's names and emails, a word and a person.
                "search, ?q=45217": (reviewer, "/transactions/?q=45217"),
                "search, ?q=password": (reviewer, "/transactions/?q=password"),
                "search, ?q=user17": (reviewer, "/transactions/?q=user17"),
                "search, ?q=ticket+user17": (reviewer, "/transactions/?q=ticket+user17"),
                "search, requestor's own ?q=4521": (requestor, "/transactions/?q=4521"),
            }
            timings = {name: [] for name in variants}
            cpu = {name: 0.0 for name in variants}  # the worker's, summed over the requests
            worker = common.only_worker_pid(server)
            shown = {}
            for n in range(args.requests + 3):
                for name, (browser, path) in variants.items():
                    cpu_before = common.cpu_seconds(worker)
                    started = time.perf_counter()
                    response = browser.session.get(server.url + path, timeout=30)
                    took = time.perf_counter() - started
                    response.raise_for_status()
                    if n >= 3:  # the first few warm the caches
                        timings[name].append(common.ms(took))
                        cpu[name] += common.cpu_seconds(worker) - cpu_before
                    shown[name] = len(ROW_COUNT.findall(response.text))
            database = "SQLite" if args.database == "sqlite" else "PostgreSQL"
            for name in variants:
                report.add(request=name, database=database, transactions=args.transactions,
                           latency=common.summary(timings[name]), rows=shown[name],
                           worker_cpu_ms=round(common.ms(cpu[name]) / args.requests, 1))
            cookie = "; ".join(f"{c.name}={c.value}" for c in reviewer.session.cookies)
            path = f"/transactions/stream?after={last_event - args.replay}"
            resumes, resume_cpu = [], 0.0
            for n in range(args.resumes + 2):
                cpu_before = common.cpu_seconds(worker)
                took = read_events(server.url, path, cookie, args.replay)
                if n >= 2:
                    resumes.append(common.ms(took))
                    resume_cpu += common.cpu_seconds(worker) - cpu_before
            report.add(request=f"stream resume, {args.replay} events", database=database,
                       transactions=args.transactions, latency=common.summary(resumes),
                       rows=args.replay,
                       worker_cpu_ms=round(common.ms(resume_cpu) / args.resumes, 1))
            if args.profile:
                profile_list_page(server, reviewer, args.requests, report)
        finally:
            server.stop()
        with app.app_context():
            db.engine.dispose()
    report.note("target: list page (reviewer) p50 at most 30 ms at 100,000 rows")
    report.note("target: list with a text search p50 at most 50 ms at 100,000 rows")
    report.finish(COLUMNS)


if __name__ == "__main__":
    main()
