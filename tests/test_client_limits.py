"""Sign-in and the authentication page are rate limited per client, with a clear 429 page."""
import logging
import uuid

import pytest

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from tests.support.accounts import PASSWORD
from tests.support.config import REDIS_URL, base_test_config, need, redis_available
from tests.support.web import AuthActions, csrf_token_from

WRONG = "not the password at all"


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": True}


def client_at(app, address, **environ):
    """A browser at ``address``, as the server sees it (REMOTE_ADDR)."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": address, **environ})
    return client


def sign_in(client, email, password=WRONG):
    token = csrf_token_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token})


def assert_rate_limited_page(response, says):
    assert response.status_code == 429
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 61, "within the minute's window (rounded up)"
    assert says in response.text
    assert f"Wait {seconds} second" in response.text
    assert '<p class="error-code">429</p>' in response.text, "the styled error page"
    assert "Content-Security-Policy" in response.headers


def test_the_eleventh_wrong_password_in_a_minute_gets_a_429_page_saying_when(app, make_user):
    user = make_user("member")
    client = client_at(app, "198.51.100.10")
    for _ in range(10):
        response = sign_in(client, user.email)
        assert response.status_code == 200
        assert "Email or password is incorrect." in response.text
    assert_rate_limited_page(sign_in(client, user.email), "Too many failed sign-in attempts")
    assert sign_in(client, user.email, PASSWORD).status_code == 429, "locked, even when right"


def test_another_client_is_not_affected(app, make_user):
    victim, colleague = make_user("member"), make_user("member")
    attacker = client_at(app, "198.51.100.11")
    for _ in range(11):
        sign_in(attacker, victim.email)
    assert sign_in(attacker, victim.email).status_code == 429
    elsewhere = client_at(app, "198.51.100.12")
    assert sign_in(elsewhere, colleague.email).status_code == 200
    assert sign_in(elsewhere, colleague.email, PASSWORD).status_code == 302


def test_guesses_spread_over_addresses_still_lock_the_account_they_aim_at(app, make_user):
    user = make_user("member")
    for n in range(10):
        assert sign_in(client_at(app, f"203.0.113.{n}"), user.email).status_code == 200
    assert_rate_limited_page(sign_in(client_at(app, "203.0.113.99"), f" {user.email.upper()}"),
                             "Too many failed sign-in attempts for this account.")


def test_look_alike_spellings_of_the_email_count_against_the_same_account(app, make_user):
    make_user("member", email="name@example.com")
    spellings = ["name@example.com", "name@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
                 "name@example\u3002com", "NAME@Example.COM"]
    for n in range(10):
        client = client_at(app, f"203.0.113.{n}")
        assert sign_in(client, spellings[n % len(spellings)]).status_code == 200
    assert_rate_limited_page(
        sign_in(client_at(app, "203.0.113.99"), "name@\uff45xample\u3002com", PASSWORD),
        "Too many failed sign-in attempts for this account.")


def test_signing_in_successfully_is_never_counted(app, make_user):
    user = make_user("member")
    client = client_at(app, "198.51.100.13")
    for _ in range(15):
        assert sign_in(client, user.email, PASSWORD).status_code == 302
        AuthActions(client).logout()


def test_the_authentication_page_allows_30_requests_a_minute_per_client(app):
    client = client_at(app, "198.51.100.14")
    for n in range(30):
        assert client.get(f"/authenticate/guess-{n}").status_code == 404
    response = client.get("/authenticate/guess-30")
    assert_rate_limited_page(response, "Too many requests for authentication links")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    token = csrf_token_from(client.get("/login").text)
    assert client.post("/authenticate/guess-31", data={"csrf_token": token}).status_code == 429
    assert client_at(app, "198.51.100.15").get("/authenticate/guess-0").status_code == 404


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True,
                                         "LOGIN_RATE_LIMIT": "2 per minute"}])
def test_the_limit_is_a_setting(app, make_user):
    user = make_user("member")
    client = client_at(app, "198.51.100.16")
    assert [sign_in(client, user.email).status_code for _ in range(3)] == [200, 200, 429]


def test_limits_are_read_from_sendauth_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("SENDAUTH_LOGIN_RATE_LIMIT", "3 per hour")
    monkeypatch.setenv("SENDAUTH_AUTHENTICATE_RATE_LIMIT", "5/minute")
    monkeypatch.setenv("SENDAUTH_RATELIMIT_ENABLED", "false")
    config = create_app().config
    assert config["LOGIN_RATE_LIMIT"] == "3 per hour"
    assert config["AUTHENTICATE_RATE_LIMIT"] == "5/minute"
    assert config["RATELIMIT_ENABLED"] is False


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": False}])
def test_limits_can_be_turned_off(app, make_user):
    user = make_user("member")
    client = client_at(app, "198.51.100.17")
    assert {sign_in(client, user.email).status_code for _ in range(15)} == {200}


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True,
                                         "LOGIN_RATE_LIMIT": "3 per minute"}])
def test_a_forged_x_forwarded_for_does_not_make_a_new_client(app, make_user):
    for n in range(3):
        client = client_at(app, "198.51.100.18", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        sign_in(client, make_user("member").email)
    client = client_at(app, "198.51.100.18", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert_rate_limited_page(sign_in(client, make_user("member").email),
                             "Too many failed sign-in attempts from your address.")


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "PROXY_FIX_X_FOR": 1,
                                         "LOGIN_RATE_LIMIT": "3 per minute"}])
def test_behind_a_configured_proxy_each_forwarded_client_is_counted_apart(app, make_user):
    proxy = "10.0.0.5"
    first = client_at(app, proxy, HTTP_X_FORWARDED_FOR="192.0.2.1")
    for _ in range(3):
        sign_in(first, make_user("member").email)
    user = make_user("member")
    assert sign_in(first, user.email).status_code == 429
    second = client_at(app, proxy, HTTP_X_FORWARDED_FOR="192.0.2.2")
    assert sign_in(second, user.email, PASSWORD).status_code == 302


@pytest.mark.redis
def test_with_redis_every_process_shares_the_count(tmp_path, monkeypatch):
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"

    def process():
        app = create_app(base_test_config(tmp_path, REDIS_URL=REDIS_URL, RATELIMIT_ENABLED=True))
        with app.app_context():
            db.create_all()
        return app

    first = process()
    assert first.config["RATELIMIT_STORAGE_URI"] == REDIS_URL
    for _ in range(10):
        assert sign_in(client_at(first, address), email).status_code == 200
    second = process()
    assert sign_in(client_at(second, address), email).status_code == 429


@pytest.mark.redis
def test_two_installations_on_one_redis_count_apart(tmp_path, monkeypatch):
    need(redis_available(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "instance"))
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"

    def installation(prefix):
        app = create_app(base_test_config(tmp_path, REDIS_URL=REDIS_URL, RATELIMIT_ENABLED=True,
                                          REDIS_CHANNEL_PREFIX=prefix))
        with app.app_context():
            db.create_all()
        return app

    first = installation(f"first-{uuid.uuid4().hex[:6]}")
    for _ in range(10):
        assert sign_in(client_at(first, address), email).status_code == 200
    assert sign_in(client_at(first, address), email).status_code == 429
    second = installation(f"second-{uuid.uuid4().hex[:6]}")
    assert sign_in(client_at(second, address), email).status_code == 200


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True,
                                         "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:9/0"}])
def test_sign_in_still_works_when_the_limit_store_is_unreachable(app, make_user, caplog):
    user = make_user("member")
    caplog.set_level(logging.ERROR)
    client = client_at(app, "198.51.100.19")
    assert sign_in(client, user.email, PASSWORD).status_code == 302
    assert "Failed to rate limit" in caplog.text
