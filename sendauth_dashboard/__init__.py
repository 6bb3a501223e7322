"""SendAuth dashboard: the application factory."""
import os
from functools import partial
from pathlib import Path

import click
from flask import Flask
from flask.cli import run_command
from flask.helpers import get_debug_flag
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import is_running_from_reloader

from .config import derive, instance_path, layered
from .core import after_commit
from .core.secrets import secret_box_for
from .extensions import csrf, db, limiter, login_manager, migrate
from .runtime import Runtime
from .services.live import messages
from .services.live.broker import broker_for
from .services.live.replay import reader
from .services.live.rights import Rights
from .services.live.slots import StreamSlots
from .services.outbox.dispatcher import start_thread
from .services.outbox.send_window import window_for
from .services.webhooks import events as webhook_events
from .services.webhooks import sender as webhook_sender

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def create_app(test_config=None):
    """Build the app. Config layers, later ones winning: defaults, instance/config.py,
    SENDAUTH_* environment variables, ``test_config``; then what derives from them."""
    app = Flask(__name__, instance_path=instance_path(), instance_relative_config=True,
                template_folder=_resource_dir("templates"), static_folder=_resource_dir("static"))
    app.config.from_mapping(layered(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    derive(app.config, app.instance_path)
    from .pages.transactions.stream import StreamOpenings  # the pages import the app's parts

    # A live stream that may open is answered before Flask's request machinery (issue 26).
    app.wsgi_app = StreamOpenings(app, app.wsgi_app)
    if app.config["PROXY_FIX_X_FOR"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXY_FIX_X_FOR"]))
    app.extensions["sendauth"] = Runtime(secret_box=secret_box_for(app.config),
                                         broker=broker_for(app.config, reader(app)),
                                         send_window=window_for(app.config),
                                         stream_slots=StreamSlots(),
                                         viewer_rights=Rights(app=app), fragments=messages.Drawn())
    _init_extensions(app)
    _register_views(app)
    after_commit.install(partial(messages.message_for, recording=True))
    webhook_events.install()
    return app


def _resource_dir(name):
    """``templates/`` and ``static/`` at the top of the repository; in an installed wheel,
    where there is no repository, the copies built into the package."""
    top = PACKAGE_DIR.parent / name
    return str(top if top.is_dir() else PACKAGE_DIR / name)


def _init_extensions(app):
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)  # after csrf: a form refused for its token is not counted


def _register_views(app):
    from . import api, cli, errors, scim, security
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

    app.url_map.converters.update(int=RowIdConverter, channel=ChannelConverter)
    for blueprint in (auth.bp, main.bp, settings.bp, profile.bp, transactions.bp,
                      transactions.answer_bp, insights.bp, enrolment.bp, webhooks.bp):
        app.register_blueprint(blueprint)
    api.register(app)
    scim.register(app)
    for module in (errors, security, cli, formatting):
        module.register(app)
    app.context_processor(main.navigation)
    app.context_processor(main.address_warning)


def serve(app):
    """Start what a process that serves ``app`` runs beside it: the dispatcher and webhook
    sender threads (with DISPATCHER "thread"). ``wsgi.py`` calls it once, as the process
    starts; it starts nothing in a CLI command other than ``flask run``, nor in the parent of
    Werkzeug's reloader (which only watches the files and restarts the child that serves)."""
    if _serves_requests():
        if app.config["PREPARE_ON_RUN"] and _command() is run_command:
            # `make run`: migrate if behind, ensure an admin, in this one start (cli.prepare).
            from . import cli

            with app.app_context():
                cli.prepare()
        start_thread(app)
        webhook_sender.start_thread(app)


def _command():
    context = click.get_current_context(silent=True)
    return context.command if context is not None else None


def _serves_requests():
    command = click.get_current_context(silent=True)
    if command is None:
        return True  # a gunicorn worker, or any WSGI server that imports wsgi:app
    if command.command is not run_command:
        return False  # flask db upgrade, flask worker (its own dispatcher), ...
    reloads = command.params.get("reload")
    if reloads is None:
        reloads = get_debug_flag()  # as `flask run` decides it
    return not reloads or is_running_from_reloader()
