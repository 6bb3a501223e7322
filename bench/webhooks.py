"""Benchmark (`make bench-webhooks`): outgoing webhooks while requests are sent and answered.

On a fresh database: the webhook sender in a `flask worker` woken through Redis (as `make
serve` with Redis runs it; ``--sender thread``: in this process, as in a web process without
Redis), and five receivers (tests/fakes/receiver.py: real HTTP servers that verify every
delivery with the standardwebhooks package), each subscribed to ``transaction.verified``; one
of them answers each delivery after ``--slow`` seconds (it gets few: turning the endpoints off
between blocks cancels what is queued for it). Requests are sent and answered one after
another, one every ``--interval`` s (0.05), the way the send form and the answer page commit
them (the services, each change one database transaction).

Figures: the time from each answer's commit to the fast receivers' answer for its webhook
(p50 ≤ 100 ms, p99 ≤ 500 ms), the time from the last answer until every fast receiver has every
webhook (the drain), and the send path's time (create and commit a request) without any
endpoint, then with the five (ratio ≤ 1.1): blocks alternate so the machine's load falls on
both.

Run: `make bench-webhooks` (or `.venv/bin/python -m bench.webhooks --requests 100`).
"""
import argparse
import json
import time

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Transaction, User, WebhookEndpoint
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.requests import transactions
from sendauth_dashboard.services.webhooks import endpoints
from sendauth_dashboard.services.webhooks.sender import Sender
from tests.fakes.http import Answer
from tests.fakes.receiver import WebhookReceiver

from . import common
from .common import get

FAST_RECEIVERS = 4
BLOCKS = 4
WARMUP = 5


def send_and_answer(app, n, answered):
    """One request sent (timed: the send path) and answered; returns the send's ms."""
    with app.app_context():
        requestor = db.session.scalar(db.select(User).filter_by(email=common.REQUESTOR))
        member = db.session.scalar(db.select(User).filter_by(email=common.MEMBER))
        started = time.perf_counter()
        transaction = transactions.create(requestor=requestor, user_email=member.email,
                                          message=f"Webhook benchmark {n}", context="")
        db.session.commit()
        took = time.perf_counter() - started
        transactions.answer(db.session.get(Transaction, transaction.id), "verify", user=member,
                            data={"proof": "passkey"})
        db.session.commit()
        answered[transaction.public_id] = time.monotonic()
    return common.ms(took)


def caught_up(receivers, expected):
    for receiver in receivers:
        receiver.wait_for(lambda r: len(r.verified) >= expected, timeout=120)


def set_endpoints(app, enabled):
    with app.app_context():
        db.session.execute(db.update(WebhookEndpoint).values(enabled=enabled))
        db.session.commit()


def start_sender(args, app, url, folder, prefix):
    """The sender in this process (a thread, as in a web process), or in a `flask worker`
    beside it (as `make serve` with Redis runs it), woken through Redis. Returns how to stop
    it, and how to read the CPU seconds its process has used (None for a thread: this process
    also sends, answers and receives)."""
    if args.sender == "thread":
        sender = runtime(app).webhook_sender = Sender(app)
        sender.start()
        return (lambda: sender.stop(timeout=30)), None
    env = common.environment(folder, SQLALCHEMY_DATABASE_URI=url, REDIS_URL=common.REDIS_URL,
                             REDIS_CHANNEL_PREFIX=prefix, WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true",
                             PAGERDUTY_EVENTS_URL="http://127.0.0.1:9/v2/enqueue")
    worker = common.dispatcher(env, folder, "webhooks-worker")
    return worker.stop, lambda: common.cpu_seconds(worker.process.pid)


def answer_blocks(app, args, fast, answered, sends):
    """Blocks without and with the endpoints, alternating; returns the seconds spent in the
    blocks with them (the rate reached: a loaded machine sends slower than --interval asks)."""
    per_block, seconds_with = args.requests // BLOCKS, 0.0
    for block in range(2 * BLOCKS):
        mode = "with" if block % 2 else "without"
        if mode == "without":  # turning endpoints off cancels what they have queued
            caught_up(fast, WARMUP + len(answered))
        set_endpoints(app, mode == "with")
        began = time.monotonic()
        for n in range(per_block):
            started = time.perf_counter()
            took = send_and_answer(app, f"{block}-{n}", answered if mode == "with" else {})
            sends[mode].append(took)
            time.sleep(max(0.0, args.interval - (time.perf_counter() - started)))
        if mode == "with":
            seconds_with += time.monotonic() - began
    return seconds_with


def run(args, folder, report):
    receivers = [WebhookReceiver().start() for _ in range(FAST_RECEIVERS + 1)]
    fast, slow = receivers[:FAST_RECEIVERS], receivers[-1]
    slow.answer_always(Answer.slow(args.slow))
    prefix = common.redis_prefix("webhooks")
    with common.database(args.database, "webhooks", folder) as url:
        redis = {"REDIS_URL": common.REDIS_URL, "REDIS_CHANNEL_PREFIX": prefix} \
            if args.sender == "process" else {}
        app = common.driver_app(url, folder, WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True, **redis)
        common.seed_people(app)
        with app.app_context():
            for receiver in receivers:
                _, secret = endpoints.create(receiver.base_url + "/hooks", "bench",
                                             ["transaction.verified"], True, actor=None)
                receiver.secrets.append(secret)
            db.session.commit()
        stop, sender_cpu = start_sender(args, app, url, folder, prefix)
        answered, sends = {}, {"without": [], "with": []}
        try:
            for n in range(WARMUP):  # the sender is up and its connections made
                send_and_answer(app, f"warm-up {n}", {})
            caught_up(fast, WARMUP)
            cpu_before = sender_cpu and sender_cpu()
            seconds_with = answer_blocks(app, args, fast, answered, sends)
            last_answer = time.monotonic()
            caught_up(fast, WARMUP + len(answered))
            drain = time.monotonic() - last_answer
            cpu = sender_cpu and sender_cpu() - cpu_before
            slow_done = len(slow.verified)
        finally:
            slow.answer_normally()
            stop()
            for receiver in receivers:
                receiver.stop()
            with app.app_context():
                db.engine.dispose()
    latencies = [common.ms(got.at - answered[i]) for receiver in fast
                 for got in receiver.received
                 if (i := json.loads(got.raw)["data"]["id"]) in answered]
    without, with_ = common.summary(sends["without"]), common.summary(sends["with"])
    return report.add(
        database=args.database, sender=args.sender, requests=len(answered),
        endpoints=FAST_RECEIVERS + 1,
        slow_s=args.slow, latency=common.summary(latencies), drain_ms=round(common.ms(drain)),
        slow_delivered=slow_done, send_without=without, send_with=with_,
        answers_per_s=round(len(answered) / seconds_with, 1),
        # The worker's CPU (its sender and its dispatcher) per webhook delivered, warm-up out.
        sender_cpu_ms=cpu and round(common.ms(cpu) / (FAST_RECEIVERS * len(answered)
                                                       + slow_done), 2),
        ratio_p50=round(with_["p50"] / without["p50"], 2))


COLUMNS = [
    ("database", get("database")),
    ("sender", get("sender")),
    ("answered", get("requests")),
    ("endpoints", get("endpoints")),
    ("answers/s reached", get("answers_per_s")),
    ("answer→fast receivers p50 ms", get("latency", "p50")),
    ("p99 ms", get("latency", "p99")),
    ("drain ms", get("drain_ms")),
    ("slow endpoint got", get("slow_delivered")),
    ("worker CPU ms/webhook", get("sender_cpu_ms")),
    ("send p50 ms without", get("send_without", "p50")),
    ("with", get("send_with", "p50")),
    ("ratio p50", get("ratio_p50")),
    ("load", get("load_1min")),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description="outgoing webhooks: latency, drain, send path")
    parser.add_argument("--requests", type=int, default=1000,
                        help="requests sent and answered with the endpoints on (as many again "
                             "without)")
    parser.add_argument("--slow", type=float, default=5.0, help="the slow endpoint's answer time")
    parser.add_argument("--interval", type=float, default=0.05,
                        help="seconds from one request's send to the next (people's pace, not "
                             "a flood: 0 sends back to back)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--sender", choices=("process", "thread"), default="process",
                        help="process: a `flask worker` woken through Redis (make serve with "
                             "Redis); thread: in this process, as in a web process")
    args = parser.parse_args(argv)
    folder = common.run_folder("webhooks")
    report = common.Report(
        "webhooks", "outgoing webhooks: answer → receiver latency, drain, send path ratio",
        {"requests": args.requests, "slow_s": args.slow, "database": args.database,
         "sender": args.sender,
         "interval_s": args.interval,
         "blocks": BLOCKS, "receivers": "tests/fakes/receiver.py (standardwebhooks verify)"})
    run(args, folder, report)
    report.note("ratio: send path with five endpoints / without; target at most 1.1")
    report.finish(COLUMNS)


if __name__ == "__main__":
    main()
