"""Benchmark 2, the send path: `POST /transactions/new` through the served app (gunicorn, gevent,
one worker, the dispatcher in the web process as by default) while the PagerDuty fake answers at
once, and while it takes 3 s to answer each event. The web request must not wait for PagerDuty,
so the two should be the same: the ratio (3 s / at once) is the number.

Each block is a fresh database and server; blocks alternate (at once, 3 s, at once, 3 s, ...) so
a change in the machine's load falls on both. Sends are paced (one every ``--interval`` s) like
people sending requests, not a flood.

Run: `make bench-send` (or `.venv/bin/python -m bench.send --sends 50 --rounds 1`).
"""
import argparse
import time

from sqlalchemy import func, select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery
from tests.fakes.pagerduty import Answer

from . import common
from .common import get
from .fakes import BenchPagerDuty

WARMUP_SENDS = 5


def send_form(n):
    return {"user": common.MEMBER, "message": f"Send path benchmark {n}: please confirm it is you",
            "context": f"Ticket #{5000 + n}"}


def block(kind, folder, fake, label, sends, interval):
    """One server on a fresh database; returns the POST latencies (ms) and the outbox at the end."""
    with common.database(kind, f"send_{label}", folder) as url:
        app = common.driver_app(url, folder)
        common.seed_people(app)
        env = common.environment(folder, SQLALCHEMY_DATABASE_URI=url,
                                 PAGERDUTY_EVENTS_URL=fake.url, BASE_URL="http://sendauth.test")
        server = common.served(env, folder, f"send-{label}")
        try:
            requestor = common.signed_in(server.url, common.REQUESTOR)
            token = requestor.token("/transactions/new")
            latencies = []
            for n in range(WARMUP_SENDS + sends):
                started = time.perf_counter()
                response = requestor.session.post(
                    f"{server.url}/transactions/new", data={"csrf_token": token, **send_form(n)},
                    allow_redirects=False, timeout=30)
                took = time.perf_counter() - started
                if response.status_code != 302:
                    raise RuntimeError(f"send {n}: HTTP {response.status_code}: "
                                       f"{response.text[:300]}")
                if n >= WARMUP_SENDS:
                    latencies.append(common.ms(took))
                time.sleep(max(0.0, interval - took))
        finally:
            server.stop()
        with app.app_context():
            outbox = dict(db.session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)).all())
            db.engine.dispose()
    return latencies, outbox


COLUMNS = [
    ("PagerDuty answers", get("mode")),
    ("database", get("database")),
    ("sends", get("latency", "n")),
    ("p50 ms", get("latency", "p50")),
    ("p99 ms", get("latency", "p99")),
    ("min", get("latency", "min")),
    ("max", get("latency", "max")),
    ("IQR", lambda row: f"{row['latency']['q1']:.1f}-{row['latency']['q3']:.1f}"),
    ("p50 per round", lambda row: ", ".join(f"{v:.1f}" for v in row["round_p50"])),
    ("outbox at end", lambda row: ", ".join(f"{k} {v}" for k, v in sorted(row["outbox"].items()))),
    ("ratio p50", get("ratio_p50")),
    ("ratio p99", get("ratio_p99")),
    ("load", get("load_1min")),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description="POST /transactions/new: PagerDuty fast vs slow")
    parser.add_argument("--sends", type=int, default=100, help="measured sends per block")
    parser.add_argument("--rounds", type=int, default=2, help="blocks per mode, alternating")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between sends")
    parser.add_argument("--slow", type=float, default=3.0, help="the slow fake's answer time")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)
    folder = common.run_folder("send")
    report = common.Report(
        "send", "POST /transactions/new latency, PagerDuty answering at once vs slowly",
        {"sends_per_block": args.sends, "rounds": args.rounds, "interval_s": args.interval,
         "slow_s": args.slow, "database": args.database, "warmup_sends": WARMUP_SENDS,
         "serving": "gunicorn gevent, 1 worker, dispatcher in the web process"})
    modes = {"at once": None, f"after {args.slow:g} s": Answer.slow(args.slow)}
    fake = BenchPagerDuty().start()
    results = {mode: {"latencies": [], "round_p50": [], "outbox": {}} for mode in modes}
    try:
        for round_ in range(args.rounds):
            for index, (mode, answer) in enumerate(modes.items()):
                print(f"send: round {round_ + 1}, PagerDuty answers {mode}", flush=True)
                fake.answer_normally()
                if answer is not None:
                    fake.answer_always(answer)
                latencies, outbox = block(args.database, folder, fake, f"{round_}{index}",
                                          args.sends, args.interval)
                result = results[mode]
                result["latencies"] += latencies
                result["round_p50"].append(common.percentile(latencies, 50))
                for status, count in outbox.items():
                    result["outbox"][status] = result["outbox"].get(status, 0) + count
                print(f"  p50 {common.percentile(latencies, 50):.1f} ms, p99 "
                      f"{common.percentile(latencies, 99):.1f} ms; outbox {outbox}", flush=True)
    finally:
        fake.answer_normally()
        fake.stop()
    rows = [report.add(mode=mode, database=args.database,
                       latency=common.summary(result["latencies"]),
                       round_p50=[round(v, 2) for v in result["round_p50"]],
                       outbox=result["outbox"])
            for mode, result in results.items()]
    fast, slow = rows
    slow["ratio_p50"] = round(slow["latency"]["p50"] / fast["latency"]["p50"], 2)
    slow["ratio_p99"] = round(slow["latency"]["p99"] / fast["latency"]["p99"], 2)
    report.note("ratio: slow PagerDuty / PagerDuty at once; target at most 1.1")
    report.finish(COLUMNS)


if __name__ == "__main__":
    main()
