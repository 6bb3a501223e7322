import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sendauth_dashboard import create_app
from sendauth_dashboard.config import ConfigurationError
from tests.support.config import base_test_config


def test_test_config_wins_over_defaults(tmp_path):
    app = create_app(base_test_config(tmp_path, TRANSACTION_TTL_SECONDS=42))
    assert app.testing
    assert app.config["TRANSACTION_TTL_SECONDS"] == 42


def test_environment_overrides_defaults_and_instance_config(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text("TRANSACTION_TTL_SECONDS = 120\nBASE_URL = 'https://a.example'\n")
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SENDAUTH_TRANSACTION_TTL_SECONDS", "60")
    app = create_app({"SECRET_KEY": "x" * 32})
    assert app.config["TRANSACTION_TTL_SECONDS"] == 60
    assert app.config["BASE_URL"] == "https://a.example"


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "inst"))
    app = create_app({"SECRET_KEY": "x" * 32})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'inst' / 'sendauth.db'}"


def test_development_secret_key_is_generated_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.delenv("SENDAUTH_SECRET_KEY", raising=False)
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    key_file = tmp_path / "inst" / "secret_key"
    assert first == second == key_file.read_text().strip()
    assert len(first) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_production_refuses_to_start_without_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("SENDAUTH_ENV", "production")
    monkeypatch.delenv("SENDAUTH_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SENDAUTH_SECRET_KEY is not set"):
        create_app()
    assert not (tmp_path / "inst" / "secret_key").exists()


KEY = "3f9c2a7e1b84d05c6e2f7a9b1c3d5e7f08a6b4c2d1e9f7a5b3c1d0e8f6a4b2c9"


def test_production_starts_with_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("SENDAUTH_ENV", "production")
    monkeypatch.setenv("SENDAUTH_SECRET_KEY", KEY)
    assert create_app().config["SECRET_KEY"] == KEY


@pytest.mark.parametrize("key", ["a", "too short but random: 9f3c2a", "k" * 64])
def test_production_refuses_a_short_or_simple_secret_key_saying_how_to_make_one(
        tmp_path, monkeypatch, key):
    monkeypatch.setenv("SENDAUTH_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("SENDAUTH_ENV", "production")
    monkeypatch.setenv("SENDAUTH_SECRET_KEY", key)
    with pytest.raises(ConfigurationError, match=r"too short or too simple.*token_hex\(32\)"):
        create_app()


def test_development_accepts_any_secret_key(tmp_path):
    assert create_app(base_test_config(tmp_path, SECRET_KEY="a")).config["SECRET_KEY"] == "a"


def test_a_malformed_encryption_key_is_refused_with_how_to_make_one(tmp_path):
    with pytest.raises(ConfigurationError, match="Fernet.generate_key"):
        create_app(base_test_config(tmp_path, ENCRYPTION_KEY="not-a-key"))


def test_session_cookie_is_httponly_and_lax_and_secure_only_over_https(tmp_path):
    app = create_app(base_test_config(tmp_path))
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is False
    https = create_app(base_test_config(tmp_path, BASE_URL="https://sendauth.example.com/"))
    assert https.config["SESSION_COOKIE_SECURE"] is True
    assert https.config["BASE_URL"] == "https://sendauth.example.com"


GUNICORN_SETTINGS = """
import runpy, sys
settings = runpy.run_path("gunicorn.conf.py")
print(settings["sendauth_dispatcher"], settings["bind"], settings["workers"])
print(sorted(m for m in sys.modules if m.split(".")[0] in ("flask", "sqlalchemy",
                                                          "sendauth_dashboard")))
"""


@pytest.mark.parametrize(("instance_config", "env", "expected"), [
    ("REDIS_URL = 'redis://127.0.0.1:6379/0'\n", {}, "process"),
    ("REDIS_URL = 'redis://127.0.0.1:6379/0'\n", {"SENDAUTH_DISPATCHER": "thread"}, "thread"),
    ("", {"SENDAUTH_REDIS_URL": "redis://127.0.0.1:6379/0"}, "process"),
    ("", {}, "thread"),
], ids=["redis in instance/config.py", "thread set by the operator", "redis in the environment",
        "no redis"])
def test_gunicorn_reads_the_settings_the_app_reads_without_importing_the_app(
        tmp_path, instance_config, env, expected):
    """gunicorn.conf.py decides where the dispatcher runs from the app's own layers (a
    REDIS_URL in instance/config.py counts), and its master imports none of the app."""
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text(instance_config + "BIND = '127.0.0.1:9999'\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SENDAUTH_")}
    environ.update(env, SENDAUTH_INSTANCE_PATH=str(instance), SENDAUTH_WORKERS="3")
    result = subprocess.run([sys.executable, "-c", GUNICORN_SETTINGS], env=environ,
                            cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{expected} 127.0.0.1:9999 3", "[]"]
