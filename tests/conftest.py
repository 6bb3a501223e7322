"""Fixtures in flaskr's shape: ``app``, ``client``, ``runner``, ``auth``; plus user factories.

Which database a test runs on is decided in one place: ``pytest_generate_tests`` below.
"""
import os
import shutil

import pytest
from flask import Flask
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir
from jinja2 import BytecodeCache

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from tests.support.accounts import PASSWORD, create_user  # noqa: F401 (fixtures use them)
from tests.support.compiled import share_url_builders
from tests.support.config import CHROMIUM, base_test_config, need
from tests.support.databases import (
    PostgresDatabase,
    PostgresServer,
    SqliteTemplate,
    unique_suffix,
)
from tests.support.servers import LiveServer
from tests.support.web import AuthActions

# Hypothesis: in CI the same examples every run (derandomized, nothing saved); on a person's
# machine new ones each run, with failures kept to be tried first next time. Its files go
# under .pytest_cache, not into a .hypothesis folder in the repository.
set_hypothesis_home_dir(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     ".pytest_cache", "hypothesis"))
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_collection_modifyitems(config, items):
    """Long tests first in each xdist worker's share, short ones last.

    With ``--dist worksteal`` (setup.cfg) each of the N workers starts with a contiguous
    N-th of the collection, and a worker that runs out takes the tail of another's queue. The
    tests that take seconds each (marked ``slow`` or ``browser``) are dealt round the workers
    and put at the head of each share, so what is left to share out at the end is short tests
    and no worker waits on one long test at the end of the run. Every worker collects the same
    order, as xdist requires."""
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    long = [item for item in items
            if item.get_closest_marker("slow") or item.get_closest_marker("browser")]
    if workers < 2 or not long:
        return
    taken = set(map(id, long))
    short = [item for item in items if id(item) not in taken]
    ordered = []
    for n in range(workers):
        share = (n + 1) * len(items) // workers - n * len(items) // workers
        heads = long[n::workers]
        count = max(0, share - len(heads)) if n < workers - 1 else len(short)
        ordered += heads + short[:count]
        short = short[count:]
    items[:] = ordered


class _CompiledTemplates(BytecodeCache):
    """Templates compiled once per session, in memory, for every app the tests make: each test
    builds a fresh app, whose new Jinja environment would otherwise compile every template it
    renders again (a third of a page test's time). Jinja checks each template's source against
    the code it keeps, so an edited template is compiled anew."""

    def __init__(self):
        self._code = {}

    def load_bytecode(self, bucket):
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self._code[bucket.key] = bucket.bytecode_to_string()


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": _CompiledTemplates()}
# And the URL builders and SQL statements, once per session for every app (support/compiled.py).
share_url_builders()


@pytest.fixture
def app_config(tmp_path):
    """Overrides for one test: ``app_config["KEY"] = value`` before asking for ``app``."""
    return {}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """The schema built once per session into a SQLite file that tests copy."""
    return SqliteTemplate.build(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """A SQLite file made by `flask --app wsgi db upgrade` (once per session), to copy."""
    return SqliteTemplate.migrate(tmp_path_factory.mktemp("sqlite-migrated"))


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_database(postgres_server, tmp_path_factory):
    """This session's PostgreSQL database, schema built once; ``.empty()`` before a test."""
    database = PostgresDatabase(postgres_server.create(), tmp_path_factory.mktemp("postgres"))
    yield database
    database.close()


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server, tmp_path_factory):
    """A PostgreSQL database migrated by `flask --app wsgi db upgrade` once per session: the
    template of ``served_database``."""
    from tests.support import servers

    url = postgres_server.create("_migrated")
    folder = tmp_path_factory.mktemp("postgres-migrated")
    servers.flask(servers.environment(folder, SQLALCHEMY_DATABASE_URI=url), "db", "upgrade")
    return url


@pytest.fixture
def served_database(postgres_server, migrated_postgres):
    """A fresh PostgreSQL database as `flask --app wsgi db upgrade` builds it in production (a
    copy of the one migrated at the start of the session). Dropped with the session's others
    when it ends: a DROP DATABASE waits for PostgreSQL's checkpoint, seconds on a busy machine
    (a test's teardown took 12 s)."""
    from sqlalchemy.engine import make_url

    return postgres_server.create(unique_suffix(), template=make_url(migrated_postgres).database)


BOTH_DATABASES = [
    "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_generate_tests(metafunc):
    """Which database a test runs on: the one place this is decided.

    Every test that uses the app (``database_url``) runs on SQLite, once. It runs a second
    time on PostgreSQL only when marked ``both_databases`` (the test, or its module through
    ``pytestmark``). Mark what can behave differently there, and only that: queries beyond
    reading a row back (lists, search, filters, counts, insights, health), locking and races
    (the dispatcher's claim, concurrent answers, the last admin, the event order lock), upserts,
    the streams' replay, and odd input (PostgreSQL refuses NUL in text: the fuzzed forms).
    Views, pages, the role table, channels and rendering do not depend on the database and run
    on SQLite only. Tests that exist for PostgreSQL ask for it by name and are marked
    ``postgres``: tests/test_postgres.py (its ``database_url`` is PostgreSQL's, and the
    migration drift test), the scale-out, load and pool tests (``served_database``,
    ``postgres_database``).
    """
    if ("database_url" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("both_databases")):
        metafunc.parametrize("database_url", BOTH_DATABASES, indirect=True)


@pytest.fixture
def database_url(request, tmp_path):
    """An empty database with the schema built: a copy of the SQLite template, or (for a test
    marked ``both_databases``, its second run) the session's PostgreSQL database, emptied."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return request.getfixturevalue("sqlite_template").copy(tmp_path / "test.db")
    return request.getfixturevalue("postgres_database").empty()


@pytest.fixture
def app(tmp_path, app_config, database_url, monkeypatch):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(base_test_config(
        tmp_path, **{"SQLALCHEMY_DATABASE_URI": database_url, **app_config}))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """Create a user and commit; returns its id, email and role as a plain record."""
    counter = iter(range(1, 10_000))

    def make(role="member", email=None, name=None, **details):
        n = next(counter)
        return create_user(app, role, email or f"{role}{n}@example.com",
                           name or f"{role.title()} {n}", **details)

    return make


@pytest.fixture
def stream_people(app, make_user):
    """The people of the stream tests: Hana and Otto (requestors), Uma (reached by PagerDuty)."""
    from tests.support.helpers import configure_pagerduty

    configure_pagerduty(app)
    hana = make_user("requestor", name="Hana")
    otto = make_user("requestor", name="Otto")
    uma = make_user("member", name="Uma", notify_pagerduty=True)
    return hana, otto, uma


@pytest.fixture
def every_channel_offered(monkeypatch):
    """The messaging page offers everyone every channel, set up or not: for the tests of the
    preferences' own rules (formats, proofs, at least one channel), not of what the
    organisation offers (tests/test_profile_messaging.py has those)."""
    from sendauth_dashboard import channels
    from sendauth_dashboard.services.people import preferences

    monkeypatch.setattr(preferences, "offered", lambda user: list(channels.names()))


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def admin(make_user):
    return make_user("admin", email="admin@example.com", name="Ada Admin")


@pytest.fixture
def as_admin(auth, admin):
    auth.login(admin)
    return auth


@pytest.fixture
def receiver():
    """A help desk's webhook receiver (tests/fakes/receiver.py), verifying what it is sent."""
    from tests.fakes.receiver import WebhookReceiver

    fake = WebhookReceiver().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_pagerduty():
    from tests.fakes.pagerduty import FakePagerDuty

    fake = FakePagerDuty().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright, launched once per session (per xdist worker);
    nothing is downloaded."""
    need(shutil.which(CHROMIUM) is not None,
         f"no Chromium at {CHROMIUM} (Debian package 'chromium')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ])
        yield browser
        browser.close()


class _TestBrowser:
    """The session's Chromium as one test sees it: the contexts (cookies, pages) it opens are
    its own and are closed after it, so no page of an earlier test keeps running."""

    def __init__(self, chromium):
        self._chromium = chromium
        self.contexts = []

    def new_context(self, **options):
        context = self._chromium.new_context(**options)
        self.contexts.append(context)
        return context

    def new_page(self, **options):
        return self.new_context(**options).new_page()

    def __getattr__(self, name):
        return getattr(self._chromium, name)


@pytest.fixture
def browser(chromium):
    test_browser = _TestBrowser(chromium)
    yield test_browser
    for context in test_browser.contexts:
        context.close()


@pytest.fixture
def live_server_host_name():
    return "127.0.0.1"


@pytest.fixture
def live_server(tmp_path, fake_pagerduty, monkeypatch, live_server_host_name, sqlite_template):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(base_test_config(
        tmp_path, SQLALCHEMY_DATABASE_URI=sqlite_template.copy(tmp_path / "test.db"),
        DISPATCHER="thread", PAGERDUTY_EVENTS_URL=fake_pagerduty.url,
        DISPATCHER_IDLE_SECONDS=0.5, SSE_HEARTBEAT_SECONDS=1.0,
    ))
    server = LiveServer(app, live_server_host_name)
    yield server
    server.stop()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def dashboard(tmp_path, fake_pagerduty, migrated_sqlite):
    """Make the dashboard served by real processes (tests/support/dashboard.py): at most one
    per test, closed after it."""
    from tests.support.dashboard import Dashboard

    made = []

    def make(**settings):
        assert not made, "one dashboard per test (they share tmp_path)"
        made.append(Dashboard(tmp_path, fake_pagerduty, migrated_sqlite, **settings))
        return made[0]

    yield make
    for each in made:
        each.close()


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory):
    from tests.fakes.smtp import make_certificate

    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def fake_smtp():
    from tests.fakes.smtp import FakeSmtp

    fake = FakeSmtp().start()
    yield fake
    fake.stop()
    assert fake.defects == [], "the fake SMTP server received a message with defects"


@pytest.fixture
def fake_twilio():
    from tests.fakes.twilio import FakeTwilio
    from tests.support.helpers import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SENDER

    fake = FakeTwilio(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, numbers=[TWILIO_SENDER]).start()
    yield fake
    fake.stop()
    assert fake.spec_violations == [], "a request to the fake Twilio broke Twilio's spec"


@pytest.fixture
def fake_slack():
    from tests.fakes.slack import FakeSlack
    from tests.support.helpers import SLACK_BOT_TOKEN

    fake = FakeSlack(SLACK_BOT_TOKEN, member_ids=["U024BE7LH", "W012A3CDE"]).start()
    yield fake
    fake.stop()
    assert fake.spec_violations == [], "a request to the fake Slack broke Slack's spec"
