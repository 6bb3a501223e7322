"""Fixtures in flaskr's shape: ``app``, ``client``, ``runner``, ``auth``; plus user factories."""
import re

import pytest

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from sendauth_dashboard.services import accounts

PASSWORD = "a test password, long enough"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                     r'type="hidden" name="csrf_token" value="([^"]+)"')


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
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config(tmp_path):
    """Overrides for one test: ``app_config["KEY"] = value`` before asking for ``app``."""
    return {}


@pytest.fixture
def app(tmp_path, app_config, monkeypatch):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(base_test_config(tmp_path, **app_config))
    with app.app_context():
        db.create_all()
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

    def make(role="member", email=None, name=None, password=PASSWORD, active=True, **prefs):
        n = next(counter)
        with app.app_context():
            user = accounts.create_user(
                email=email or f"{role}{n}@example.com", name=name or f"{role.title()} {n}",
                role=role, password=password,
            )
            user.active = active
            for key, value in prefs.items():
                setattr(user, key, value)
            db.session.commit()
            return UserRecord(user.id, user.email, user.name, user.role)

    return make


class UserRecord:
    def __init__(self, id, email, name, role):
        self.id, self.email, self.name, self.role = id, email, name, role


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
