"""SendAuth dashboard: the application factory."""
import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import DEFAULTS, ENV_PREFIX, ConfigurationError, resolve_secret_key
from .extensions import csrf, db, limiter, login_manager, migrate
from .services.broker import broker_for
from .services.ratelimit import window_for
from .services.secrets import box_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def create_app(test_config=None):
    """Build the app. Config layers, later ones winning: defaults, instance/config.py,
    SENDAUTH_* environment variables, ``test_config``."""
    instance_path = os.environ.get(f"{ENV_PREFIX}_INSTANCE_PATH") or str(PROJECT_ROOT / "instance")
    app = Flask(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env(ENV_PREFIX)
    if test_config:
        app.config.from_mapping(test_config)

    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SECRET_KEY"] = resolve_secret_key(app.config, app.instance_path)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        database = Path(app.instance_path) / "sendauth.db"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database}"
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        options["connect_args"] = {"timeout": float(app.config["SQLITE_BUSY_TIMEOUT_SECONDS"]),
                                   **options.get("connect_args", {})}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = app.config["BASE_URL"].startswith("https://")
    app.config["BASE_URL"] = app.config["BASE_URL"].rstrip("/")
    app.config["RATELIMIT_STORAGE_URI"] = (
        app.config["RATELIMIT_STORAGE_URI"] or app.config["REDIS_URL"] or "memory://")
    if app.config["PROXY_FIX_X_FOR"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXY_FIX_X_FOR"]))
    try:
        app.extensions["sendauth_secret_box"] = box_for(app.config)
    except ValueError:
        raise ConfigurationError(
            "SENDAUTH_ENCRYPTION_KEY is not a valid key: it must be 32 url-safe base64-encoded "
            "bytes, as made by `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`. Or leave it unset to derive one from "
            "SENDAUTH_SECRET_KEY."
        ) from None
    app.extensions["sendauth_broker"] = broker_for(app.config)
    app.extensions["sendauth_send_window"] = window_for(app.config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)  # after csrf: a form refused for its token is not counted

    from . import (
        auth,
        cli,
        errors,
        formatting,
        insights,
        main,
        profile,
        security,
        settings,
        transactions,
    )
    from .ids import RowIdConverter
    from .services import delivery

    app.url_map.converters["int"] = RowIdConverter
    app.register_blueprint(auth.bp)
    app.register_blueprint(main.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(transactions.bp)
    app.register_blueprint(transactions.answer_bp)
    app.register_blueprint(insights.bp)
    errors.register(app)
    security.register(app)
    cli.register(app)
    formatting.register(app)
    app.context_processor(main.navigation)
    # Started by the first request, so CLI commands and the reloader's parent never start it.
    app.before_request(lambda: delivery.dispatcher_of(app) and None)
    return app
