"""Fixtures in flaskr's shape: ``app``, ``client``, ``runner``, ``auth``; plus user factories."""
import json
import os
import re
import shutil
import threading

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from sendauth_dashboard.services import accounts, passkeys

from .authenticator import SoftAuthenticator

PASSWORD = "a test password, long enough"

# Hypothesis: in CI the same examples every run (derandomized, nothing saved); on a person's
# machine new ones each run, with failures kept to be tried first next time. Its files go
# under .pytest_cache, not into a .hypothesis folder in the repository.
set_hypothesis_home_dir(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     ".pytest_cache", "hypothesis"))
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                     r'type="hidden" name="csrf_token" value="([^"]+)"')


# CI sets this: a test whose service (browser, PostgreSQL, Redis) is missing fails instead of
# skipping. On a person's machine without them, those tests skip and say why.
REQUIRE_SERVICES = os.environ.get("SENDAUTH_TEST_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("SENDAUTH_TEST_CHROMIUM", "/usr/bin/chromium")


def need(available, why):
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{why}; CI requires it (SENDAUTH_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(why)


def base_test_config(tmp_path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test secret key, not used anywhere else",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
        "DISPATCHER": "off",
        # Fast hashing for tests only; the product default is scrypt.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "BASE_URL": "http://sendauth.test",
        "PAGERDUTY_EVENTS_URL": "http://127.0.0.1:9/v2/enqueue",
        "TWILIO_API_URL": "http://127.0.0.1:9",
        "SLACK_API_URL": "http://127.0.0.1:9/api",
        # Tests sign in often from one address; tests/test_client_limits.py turns limits on.
        "RATELIMIT_ENABLED": False,
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config(tmp_path):
    """Overrides for one test: ``app_config["KEY"] = value`` before asking for ``app``."""
    return {}


POSTGRES_URL = os.environ.get("SENDAUTH_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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

    from . import servers

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


def create_user(app, role, email, name=None, password=PASSWORD, active=True, passkey=True,
                **prefs):
    """A user made through the accounts service of ``app``, as a plain record.

    With ``passkey`` (the default: the organisation requires one to receive a request) they
    register one made by a software authenticator, kept on the record as ``authenticator``."""
    with app.app_context():
        user = accounts.create_user(email=email, name=name or email.split("@")[0].title(),
                                    role=role, password=password)
        user.active = active
        for key, value in prefs.items():
            setattr(user, key, value)
        db.session.flush()
        authenticator = register_passkey(app, user) if passkey else None
        db.session.commit()
        return UserRecord(user.id, user.email, user.name, user.role, authenticator)


def register_passkey(app, user, name="Test passkey"):
    """Register a new software passkey for ``user`` the way the profile page does (uncommitted)."""
    authenticator = SoftAuthenticator(app.config["BASE_URL"])
    options, challenge = passkeys.registration_options(user)
    passkeys.register(user, json.dumps(authenticator.create(options)), challenge, name=name)
    return authenticator


class UserRecord:
    def __init__(self, id, email, name, role, authenticator=None):
        self.id, self.email, self.name, self.role = id, email, name, role
        self.authenticator = authenticator


def csrf_token_from(html):
    match = CSRF_RE.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


class AuthActions:
    def __init__(self, client):
        self.client = client

    def login(self, user_or_email, password=PASSWORD, next_url=None):
        email = getattr(user_or_email, "email", user_or_email)
        page = self.client.get("/login")
        url = "/login" if next_url is None else f"/login?next={next_url}"
        return self.client.post(url, data={
            "email": email, "password": password, "csrf_token": csrf_token_from(page.text),
        })

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": self.csrf_token()})

    def csrf_token(self, page="/"):
        return csrf_token_from(self.client.get(page).text)

    def post(self, url, data=None, token_page="/", **kwargs):
        """POST a form the way a browser does: with the session's CSRF token read from a page."""
        form = {"csrf_token": self.csrf_token(token_page)}
        form.update(data or {})
        return self.client.post(url, data=form, **kwargs)


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
    from .fakes.pagerduty import FakePagerDuty

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


class LiveServer:
    """The app served over real HTTP by Werkzeug's threaded server, as `make run` does.

    ``host_name`` is the name in its address (and BASE_URL): WebAuthn takes ``localhost`` as
    a relying party id, never an IP address."""

    def __init__(self, app, host_name="127.0.0.1"):
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://{host_name}:{self.server.server_port}"
        app.config["BASE_URL"] = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.app.extensions["sendauth_broker"].close_all()
        self.server.shutdown()
        self.server.server_close()
        dispatcher = self.app.extensions.get("sendauth_dispatcher")
        if dispatcher is not None:
            dispatcher.stop(timeout=10)


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
    from .fakes.smtp import make_certificate

    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def fake_smtp():
    from .fakes.smtp import FakeSmtp

    fake = FakeSmtp().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_twilio():
    from .fakes.twilio import FakeTwilio
    from .helpers import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SENDER

    fake = FakeTwilio(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, numbers=[TWILIO_SENDER]).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_slack():
    from .fakes.slack import FakeSlack
    from .helpers import SLACK_BOT_TOKEN

    fake = FakeSlack(SLACK_BOT_TOKEN, member_ids=["U024BE7LH", "W012A3CDE"]).start()
    yield fake
    fake.stop()
