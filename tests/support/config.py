"""Test configuration, and which services (browser, PostgreSQL, Redis) a test needs."""
import os

import pytest

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


def engine_options(**options):
    """The product's engine options, with ``options`` on top and the session's shared cache of
    compiled SQL (tests/support/compiled.py)."""
    from sendauth_dashboard.config import DEFAULTS
    from tests.support.compiled import COMPILED_SQL

    return {**DEFAULTS["SQLALCHEMY_ENGINE_OPTIONS"], **options,
            "execution_options": {"compiled_cache": COMPILED_SQL}}


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
        # Tests send many requests quickly; tests/test_transactions.py sets the limits it tests.
        "SEND_LIMIT_PER_REQUESTOR": [1_000_000, 1],
        "SEND_LIMIT_PER_USER": [1_000_000, 1],
        "SEND_LIMIT_PER_REQUESTOR_AND_USER": [1_000_000, 1],
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(),
    }
    config.update(overrides)
    return config


POSTGRES_URL = os.environ.get("SENDAUTH_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SENDAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available(url=REDIS_URL):
    import redis

    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def make_app(folder, **overrides):
    """An app on the tests' settings whose instance folder is ``folder / "instance"``, never
    the repository's own ``instance/`` (a person's config.py there, a REDIS_URL say, must not
    reach a test)."""
    from sendauth_dashboard import create_app

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(folder / "instance"))
        return create_app(base_test_config(folder, **overrides))
