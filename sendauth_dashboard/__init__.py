"""SendAuth dashboard: the application factory."""
import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import DEFAULTS, ENV_PREFIX, derive
from .core import after_commit
from .core.secrets import secret_box_for
from .extensions import csrf, db, limiter, login_manager, migrate
from .runtime import Runtime
from .services.live import messages, streams
from .services.live.broker import broker_for
from .services.outbox.send_window import window_for

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def create_app(test_config=None):
    """Build the app. Config layers, later ones winning: defaults, instance/config.py,
    SENDAUTH_* environment variables, ``test_config``; then what derives from them."""
    app = Flask(__name__, instance_path=_instance_path(), instance_relative_config=True,
                template_folder=_resource_dir("templates"), static_folder=_resource_dir("static"))
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env(ENV_PREFIX)
    if test_config:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    derive(app.config, app.instance_path)
    if app.config["PROXY_FIX_X_FOR"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXY_FIX_X_FOR"]))
    app.extensions["sendauth"] = Runtime(secret_box=secret_box_for(app.config),
                                         broker=broker_for(app.config, streams.reader(app)),
                                         send_window=window_for(app.config),
                                         stream_slots=streams.StreamSlots(),
                                         viewer_rights=streams.Rights())
    _init_extensions(app)
    _register_views(app)
    after_commit.install(messages.message_for)
    return app


def _instance_path():
    return os.environ.get(f"{ENV_PREFIX}_INSTANCE_PATH") or str(PROJECT_ROOT / "instance")


def _resource_dir(name):
    """``templates/`` and ``static/`` at the top of the repository; in an installed wheel,
    where there is no repository, the copies built into the package."""
    top = PROJECT_ROOT / name
    return str(top if top.is_dir() else PACKAGE_DIR / name)


def _init_extensions(app):
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)  # after csrf: a form refused for its token is not counted


def _register_views(app):
    from . import cli, errors, security
    from .core.ids import RowIdConverter
    from .pages import (
        auth,
        enrolment,
        formatting,
        insights,
        main,
        profile,
        settings,
        transactions,
        webhooks,
    )
    from .pages.settings.channels import ChannelConverter
    from .services.outbox.dispatcher import dispatcher_of

    app.url_map.converters.update(int=RowIdConverter, channel=ChannelConverter)
    for blueprint in (auth.bp, main.bp, settings.bp, profile.bp, transactions.bp,
                      transactions.answer_bp, insights.bp, enrolment.bp, webhooks.bp):
        app.register_blueprint(blueprint)
    for module in (errors, security, cli, formatting):
        module.register(app)
    app.context_processor(main.navigation)
    # Started by the first request, so CLI commands and the reloader's parent never start it.
    app.before_request(lambda: dispatcher_of(app) and None)
