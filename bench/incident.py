"""Benchmark 3, time to incident: from the send's commit to the PagerDuty fake receiving the event.

Two set-ups side by side in the same run, sends alternating between them:

- embedded (the default): SQLite, gunicorn (gevent, one worker) running the dispatcher in the web
  process; the view's commit wakes it directly;
- scale-out: PostgreSQL + Redis, the web process with SENDAUTH_DISPATCHER=off and one
  `flask --app wsgi worker` process, woken through Redis.

Each send is a real `POST /transactions/new` to `bench.instrumented:app` (the product's app plus a
response header with the commit's CLOCK_MONOTONIC time); the fake stamps each event's arrival on
the same clock. Sends are one at a time: the next starts after the previous incident arrived.

Run: `make bench-incident` (or `.venv/bin/python -m bench.incident --sends 20`).
"""
import argparse
import time
from contextlib import ExitStack

from . import common
from .common import get
from .fakes import BenchPagerDuty
from .headers import COMMITTED_AT
from .send import send_form

WARMUP_SENDS = 3


class Setup:
    def __init__(self, name, database, note):
        self.name = name
        self.database = database
        self.note = note
        self.processes = []
        self.latencies = []

    def start(self, stack, folder, fake):
        url = stack.enter_context(common.database(self.database, f"incident_{self.name}",
                                                  folder))
        common.seed_people(common.driver_app(url, folder))
        settings = dict(SQLALCHEMY_DATABASE_URI=url, PAGERDUTY_EVENTS_URL=fake.url,
                        BASE_URL="http://sendauth.test")
        if self.database == "postgres":
            settings.update(REDIS_URL=common.REDIS_URL, DISPATCHER="off",
                            REDIS_CHANNEL_PREFIX=common.redis_prefix("incident"))
        env = common.environment(folder, **settings)
        server = common.served(env, folder, f"incident-{self.name}", app="bench.instrumented:app")
        stack.callback(server.stop)
        self.dispatcher_pid = common.only_worker_pid(server)
        if self.database == "postgres":
            worker = common.dispatcher(env, folder, f"incident-{self.name}-worker")
            stack.callback(worker.stop)
            self.dispatcher_pid = worker.process.pid
        self.requestor = common.signed_in(server.url, common.REQUESTOR)
        self.url = server.url
        self.token = self.requestor.token("/transactions/new")

    def send(self, n, fake):
        response = self.requestor.session.post(
            f"{self.url}/transactions/new", data={"csrf_token": self.token, **send_form(n)},
            allow_redirects=False, timeout=30)
        if response.status_code != 302:
            raise RuntimeError(f"{self.name} send {n}: HTTP {response.status_code}")
        committed_at = float(response.headers[COMMITTED_AT])
        public_id = response.headers["Location"].rsplit("/", 1)[1]
        fake.wait_for(lambda f: public_id in f.arrivals, timeout=30)
        return common.ms(fake.arrivals[public_id] - committed_at)


COLUMNS = [
    ("set-up", get("setup")),
    ("store/broker", get("store")),
    ("sends", get("latency", "n")),
    ("p50 ms", get("latency", "p50")),
    ("p99 ms", get("latency", "p99")),
    ("min", get("latency", "min")),
    ("max", get("latency", "max")),
    ("IQR", lambda row: f"{row['latency']['q1']:.1f}-{row['latency']['q3']:.1f}"),
    ("load", get("load_1min")),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Commit of a send to the event at PagerDuty")
    parser.add_argument("--sends", type=int, default=40, help="measured sends per set-up")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between sends")
    parser.add_argument("--profile", action="store_true",
                        help="sample each set-up's dispatcher process with py-spy meanwhile")
    args = parser.parse_args(argv)
    folder = common.run_folder("incident")
    report = common.Report(
        "incident", "time to incident: send's commit to the fake receiving the event",
        {"sends": args.sends, "pause_s": args.pause, "warmup_sends": WARMUP_SENDS})
    setups = [
        Setup("embedded", "sqlite", "SQLite, dispatcher in the gunicorn worker"),
        Setup("scale-out", "postgres", "PostgreSQL + Redis, one `flask worker` process"),
    ]
    fake = BenchPagerDuty().start()
    try:
        with ExitStack() as stack:
            for setup in setups:
                setup.start(stack, folder, fake)
            if args.profile:
                profiles = [stack.enter_context(common.Profile(
                    setup.dispatcher_pid, f"incident-{setup.name}")) for setup in setups]
            for n in range(WARMUP_SENDS + args.sends):
                for setup in setups:
                    took = setup.send(n, fake)
                    if n >= WARMUP_SENDS:
                        setup.latencies.append(took)
                    time.sleep(args.pause)
    finally:
        fake.stop()
    for index, setup in enumerate(setups):
        row = report.add(setup=setup.name, store=setup.note,
                         latency=common.summary(setup.latencies))
        if args.profile:
            row["profile"] = profiles[index].summary()
            print(f"{setup.name}:")
            common.print_profile(row)
    report.note("target: p50 at most 50 ms on loopback")
    report.finish(COLUMNS)


if __name__ == "__main__":
    main()
