"""Fixtures in flaskr's shape: ``app``, ``client``, ``runner``, ``auth``; plus user factories."""
import os
import shutil

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from tests.support.accounts import PASSWORD, create_user  # noqa: F401 (fixtures use them)
from tests.support.config import CHROMIUM, POSTGRES_URL, base_test_config, need
from tests.support.servers import LiveServer
from tests.support.web import AuthActions

# Hypothesis: in CI the same examples every run (derandomized, nothing saved); on a person's
# machine new ones each run, with failures kept to be tried first next time. Its files go
# under .pytest_cache, not into a .hypothesis folder in the repository.
set_hypothesis_home_dir(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     ".pytest_cache", "hypothesis"))
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")



@pytest.fixture
def app_config(tmp_path):
    """Overrides for one test: ``app_config["KEY"] = value`` before asking for ``app``."""
    return {}


@pytest.fixture(scope="session")
def postgres_url():
    """A database of this test session's own on the PostgreSQL server, dropped at the end,
    so test runs on one machine never share rows."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    name = f"sendauth_test_{os.getpid()}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {name}"))
    except OperationalError as exc:
        admin.dispose()
        need(False, f"PostgreSQL not reachable at {POSTGRES_URL} ({exc.orig.__class__.__name__})")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def served_database(postgres_url, tmp_path):
    """A fresh PostgreSQL database, migrated by `flask --app wsgi db upgrade` as in production."""
    import uuid

    from sqlalchemy import create_engine, text

    from tests.support import servers

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"{admin.url.database}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    servers.flask(servers.environment(tmp_path, SQLALCHEMY_DATABASE_URI=url), "db", "upgrade")
    yield url
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Each test that uses the app runs on SQLite and again on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def app(tmp_path, app_config, database_url, monkeypatch):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(base_test_config(
        tmp_path, **{"SQLALCHEMY_DATABASE_URI": database_url, **app_config}))
    with app.app_context():
        db.create_all()
        if db.engine.dialect.name == "postgresql":
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            db.session.execute(db.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
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
def fake_pagerduty():
    from tests.fakes.pagerduty import FakePagerDuty

    fake = FakePagerDuty().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; nothing is downloaded."""
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


@pytest.fixture
def live_server_host_name():
    return "127.0.0.1"


@pytest.fixture
def live_server(tmp_path, fake_pagerduty, monkeypatch, live_server_host_name):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(base_test_config(
        tmp_path, DISPATCHER="thread", PAGERDUTY_EVENTS_URL=fake_pagerduty.url,
        DISPATCHER_IDLE_SECONDS=0.5, SSE_HEARTBEAT_SECONDS=1.0,
    ))
    with app.app_context():
        db.create_all()
    server = LiveServer(app, live_server_host_name)
    yield server
    server.stop()
    with app.app_context():
        db.engine.dispose()


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
