"""What the benchmarks share: machine facts, statistics, the results table and its JSON, and the
dashboard as real processes (gunicorn, `flask worker`) on a database and Redis prefix of the run's
own, so runs never touch anyone else's data.

Times measured in two processes are compared on CLOCK_MONOTONIC (``time.monotonic()``), which
Linux keeps for the whole machine, so a commit stamped in one process and a read stamped in
another are on the same clock.
"""
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, text

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from sendauth_dashboard.services.people import accounts
from tests.support import servers
from tests.support.accounts import PASSWORD, register_passkey
from tests.support.config import base_test_config
from tests.support.helpers import configure_pagerduty, wait_until  # noqa: F401 (bench.* use it)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
POSTGRES_ADMIN_URL = os.environ.get("SENDAUTH_BENCH_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SENDAUTH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

REQUESTOR = "hana@example.com"
REVIEWER = "rita@example.com"
MEMBER = "uma@example.com"


# -- the machine --------------------------------------------------------------------------------

def raise_open_files_limit():
    """Thousands of watchers need thousands of descriptors; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def load_1min():
    return round(os.getloadavg()[0], 2)


def machine():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "load_1min": load_1min(), "python": platform.python_version(),
            "commit": commit, "host": platform.node()}


def rss_kib(pid):
    """Resident memory of a process, from /proc/<pid>/status (VmRSS, in KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def worker_pids(server):
    """The worker processes of a gunicorn master (a `servers.Process`)."""
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def only_worker_pid(server):
    pids = worker_pids(server)
    if len(pids) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {pids}")
    return pids[0]


# -- statistics ---------------------------------------------------------------------------------

def percentile(values, q):
    """Linear interpolation between the closest ranks (numpy's default), q in 0..100."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values):
    """Median and spread of a list of numbers (milliseconds, usually)."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p99": round(percentile(values, 99), 3),
        "min": round(min(values), 3),
        "q1": round(percentile(values, 25), 3),
        "q3": round(percentile(values, 75), 3),
        "max": round(max(values), 3),
    }


def ms(seconds):
    return seconds * 1000.0


# -- results ------------------------------------------------------------------------------------

class Report:
    """Rows of one benchmark run: printed as a table, written as JSON to bench/results/."""

    def __init__(self, name, description, settings):
        self.name = name
        self.description = description
        self.settings = settings
        self.started = datetime.now(timezone.utc)
        self.machine_at_start = machine()
        self.rows = []
        self.notes = []
        self.extra = {}  # more of the run's findings for the JSON (profiles)

    def add(self, **row):
        row.setdefault("load_1min", load_1min())
        self.rows.append(row)
        return row

    def note(self, text):
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def finish(self, columns):
        """Print the table (``columns``: [(heading, getter)], or {part: columns}); write JSON."""
        end = machine()
        document = {
            "benchmark": self.name,
            "description": self.description,
            "started": self.started.isoformat(timespec="seconds"),
            "seconds": round((datetime.now(timezone.utc) - self.started).total_seconds(), 1),
            "machine": {**self.machine_at_start,
                        "load_1min_at_start": self.machine_at_start.pop("load_1min"),
                        "load_1min_at_end": end["load_1min"]},
            "settings": self.settings,
            "rows": self.rows,
            "notes": self.notes,
            **self.extra,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = self.started.strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"{self.name}-{stamp}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        shutil.copyfile(path, RESULTS / f"{self.name}-latest.json")
        print()
        print(f"{self.name}: {self.description}")
        m = document["machine"]
        print(f"machine: {m['cpus']} CPUs, load average (1 min) {m['load_1min_at_start']} at "
              f"start, {m['load_1min_at_end']} at end; commit {m['commit']}")
        if isinstance(columns, dict):  # one table per "part" of the rows
            for part, part_columns in columns.items():
                rows = [row for row in self.rows if row.get("part") == part]
                if rows:
                    print(table(rows, part_columns))
        else:
            print(table(self.rows, columns))
        for text_ in self.notes:
            print(f"note: {text_}")
        print(f"results: {path.relative_to(ROOT)}")
        return document


def table(rows, columns):
    """A plain-text table; ``columns`` is a list of (heading, function of a row)."""
    cells = [[heading for heading, _ in columns]]
    for row in rows:
        cells.append([_cell(get(row)) for _, get in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 1000 \
            else f"{value:.1f}"
    return str(value)


def get(*path):
    """A column getter for nested row values: ``get("latency", "p50")``."""
    def getter(row):
        value = row
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value
    return getter


# -- a run's own folder, database and Redis prefix ----------------------------------------------

def run_folder(name):
    """Logs and SQLite files of one run, under bench/results/ (git-ignored)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = RESULTS / "runs" / f"{name}-{stamp}-{os.getpid()}"
    folder.mkdir(parents=True)
    os.environ["SENDAUTH_INSTANCE_PATH"] = str(folder / "instance")
    return folder


def redis_prefix(name):
    return f"sendauth-bench-{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    client.ping()
    return client


@contextmanager
def database(kind, name, folder):
    """A fresh database migrated the production way (`flask --app wsgi db upgrade`).

    SQLite: a file in the run's folder. PostgreSQL: a database ``bench_<name>_<pid>`` of this
    run's own on the server at SENDAUTH_BENCH_POSTGRES_URL, dropped at the end.
    """
    if kind == "sqlite":
        path = folder / f"{name}.db"
        url = f"sqlite:///{path}"
        migrate(url, folder)
        yield url
        for leftover in folder.glob(f"{name}.db*"):
            leftover.unlink()
        return
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    database_name = f"bench_{name}_{os.getpid()}".replace("-", "_")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {database_name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {database_name}"))
    url = admin.url.set(database=database_name).render_as_string(hide_password=False)
    try:
        migrate(url, folder)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {database_name} WITH (FORCE)"))
        admin.dispose()


def migrate(url, folder):
    servers.flask(servers.environment(folder, SQLALCHEMY_DATABASE_URI=url), "db", "upgrade")


def driver_app(url, folder, **config):
    """The app inside the benchmark's own process: it seeds data and, where a benchmark needs a
    commit it can time, commits state changes the way a web process does."""
    return create_app(base_test_config(folder, SQLALCHEMY_DATABASE_URI=url,
                                       SECRET_KEY=servers.SECRET_KEY, **config))


def seed_people(app):
    """A requestor, a reviewer and a member reached through PagerDuty (with a passkey, so
    requests may be sent to them); PagerDuty configured."""
    with app.app_context():
        for role, email in (("requestor", REQUESTOR), ("reviewer", REVIEWER),
                            ("member", MEMBER)):
            user = accounts.create_user(email=email, name=email.split("@")[0].title(), role=role,
                                        password=PASSWORD)
            user.notify_pagerduty = role == "member"
            user.notify_email = False
            if role == "member":
                db.session.flush()
                register_passkey(app, user)
        db.session.commit()
    configure_pagerduty(app)


def served(env, folder, name, app="wsgi:app", workers=1):
    """gunicorn with gunicorn.conf.py (gevent workers), as `make serve` runs it."""
    return servers.gunicorn(env, folder, workers=workers, name=name, app=app)


def dispatcher(env, folder, name, concurrency=8):
    """A `flask --app wsgi worker` process: the dispatcher on its own."""
    return servers.worker(env, folder, name=name, concurrency=concurrency)


def environment(folder, **settings):
    return servers.environment(folder, **settings)


def signed_in(url, email):
    """A `servers.Browser` signed in over HTTP; its cookies open streams for that person."""
    browser = servers.Browser(url)
    browser.login(email)
    return browser


def cpu_seconds(pid):
    """User plus system CPU time a process has used, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Profile:
    """py-spy sampling a process while a block runs: collapsed stacks into bench/results/, and
    the functions where the samples were, to read what bounds a number.

        with Profile(pid, "fanout-sendauth-5000") as profile: ...
        profile.top()  # [(share of samples, function), ...] by inclusive share
    """

    def __init__(self, pid, name, rate=200, native=False):
        self.pid = pid
        self.path = RESULTS / "profiles" / f"{name}-{os.getpid()}.txt"
        self.rate = rate
        self.native = native  # C frames too (the interpreter's, gevent's, the collector's)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(self.pid),
             "--rate", str(self.rate), "--format", "raw", "--output", str(self.path)]
            + (["--native"] if self.native else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
        return self

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)

    def stacks(self):
        for line in self.path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            yield stack.split(";"), int(count)

    def top(self, limit=25, own=False):
        """Functions by share of samples: inclusive (on the stack) or ``own`` (on top)."""
        totals, samples = {}, 0
        for frames, count in self.stacks():
            samples += count
            names = [_function(frame) for frame in frames]
            for name in ({names[-1]} if own else set(names)):
                totals[name] = totals.get(name, 0) + count
        ranked = sorted(totals.items(), key=lambda item: -item[1])[:limit]
        return samples, [(round(100 * count / samples, 1), name) for name, count in ranked]

    def summary(self, limit=15):
        samples, inclusive = self.top(limit)
        _, own = self.top(limit, own=True)
        return {"file": str(self.path.relative_to(ROOT)), "samples": samples,
                "inclusive_percent": inclusive, "own_percent": own}


def _function(frame):
    """'fan_out (sendauth_dashboard/services/broker.py:72)' -> 'fan_out (…/broker.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})"


def print_profile(row):
    profile = row.get("profile")
    if not profile:
        return
    print(f"  profile ({profile['samples']} samples, {profile['file']}):")
    for heading, key in (("on the stack", "inclusive_percent"), ("on top", "own_percent")):
        print(f"    {heading}:")
        for share, name in profile[key]:
            print(f"      {share:5.1f}%  {name}")
