"""Command-line tools: `flask --app wsgi <command>`."""
import secrets
import signal

import click
import flask_migrate
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from .extensions import db
from .models import API_SCOPES, ROLES, User
from .services.outbox.dispatcher import Dispatcher
from .services.people import accounts, api_keys, enrolment, passkeys
from .services.provisioning import tokens as scim_tokens
from .services.webhooks.sender import Sender


@click.command("create-user")
@click.option("--email", required=True, help="Sign-in email (unique, case-insensitive).")
@click.option("--name", required=True, help="Name shown to the people they send requests to.")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help=f"At least {accounts.MIN_PASSWORD_LENGTH} characters; asked for when left out.")
@with_appcontext
def create_user_command(email, name, role, password):
    """Create a user account."""
    try:
        user = accounts.create_user(email=email, name=name, role=role, password=password)
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.role} {user.name} <{user.email}>.")


@click.command("ensure-admin")
@click.option("--email", default="admin@example.com", show_default=True,
              help="The account to make an admin when there is none: created if it does not "
                   "exist.")
@click.option("--name", default="Admin", show_default=True,
              help="Its name, if the account is created.")
@click.option("--new-password", is_flag=True,
              help="Also give an existing account a new random password, printed once.")
@with_appcontext
def ensure_admin_command(email, name, new_password):
    """Make sure there is an active admin; does nothing when there is one.

    On a new database it creates one with a random password, printed once. When no active
    admin is left (all demoted or deactivated), it makes --email an active admin again:
    the existing account keeps its password unless --new-password is given.
    """
    ensure_admin(email, name, new_password)


def ensure_admin(email="admin@example.com", name="Admin", new_password=False):
    if accounts.has_active_admin():
        return
    exists = accounts.find_by_email(email) is not None
    password = secrets.token_urlsafe(18) if new_password or not exists else None
    try:
        user = accounts.restore_admin(email=email, name=name, password=password)
        link = (enrolment.url(enrolment.issue(user, actor=None))
                if user is not None and not passkeys.has_passkey(user) else None)
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    if user is None:
        return
    base_url = current_app.config["BASE_URL"]
    first = db.session.scalar(select(func.count(User.id))) == 1
    what = ("The first admin account was created" if first and not exists
            else f"{user.email} is an active admin again" if exists
            else "An admin account was created: no active admin was left")
    login = (f"    password    {password}\n" if password
             else "    password    their own (unchanged)\n")
    click.echo(
        f"\n  {what}." + (" This password is shown only once:" if password else "") + "\n\n"
        f"    sign in at  {base_url}/login\n"
        f"    email       {user.email}\n" + login + "\n"
        + ("  Then register your passkey: open this enrolment link, signed in (it works once,\n"
           "  for a day; `flask --app wsgi enrolment-link --email E` prints a new one):\n"
           f"    {link}\n\n" if link else "")
        + "  Add more users under Settings > Users.\n"
    )


@click.command("prepare")
@with_appcontext
def prepare_command():
    """`db upgrade` when the database is behind, then `ensure-admin`: one start for both."""
    prepare()


def prepare():
    """What `make run` does before it serves, in the serving process itself (PREPARE_ON_RUN):
    migrate only when the database is not at the newest migration, then make sure there is
    an admin. At the head, this costs two small reads instead of Alembic's environment."""
    if not schema_is_current():
        flask_migrate.upgrade()
    ensure_admin()


def schema_is_current():
    """True when the database's alembic_version is the migrations' head: read without
    running Alembic's env.py (its logging set-up, the models' metadata, a second engine)."""
    heads = set(ScriptDirectory(current_app.extensions["migrate"].directory).get_heads())
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads


@click.command("enrolment-link")
@click.option("--email", required=True, help="The user's sign-in email.")
@with_appcontext
def enrolment_link_command(email):
    """Print a new enrolment link for the user's passkey (a reset if they have passkeys)."""
    user = accounts.find_by_email(email)
    if user is None:
        raise click.ClickException(f"There is no user with the email {email!r}.")
    try:
        token = enrolment.issue(user, actor=None)
        db.session.commit()
    except enrolment.EnrolmentError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    hours = current_app.config["ENROLMENT_TTL_SECONDS"] / 3600
    click.echo(f"Enrolment link for {user.name} <{user.email}> (works once, for {hours:g} "
               f"hours; they open it signed in with their password):\n  {enrolment.url(token)}")


@click.command("create-api-key")
@click.option("--email", required=True, help="The key's owner: it acts as them, with at most "
                                             "their role.")
@click.option("--name", required=True, help="What uses the key, such as \"Jira button\".")
@click.option("--scopes", required=True,
              help=f"Comma-separated, from: {', '.join(API_SCOPES)}.")
@click.option("--days", type=int, required=True,
              help=f"Days until it expires (1 to {api_keys.MAX_DAYS}).")
@with_appcontext
def create_api_key_command(email, name, scopes, days):
    """Print a new API key once: it is stored only as a hash."""
    user = accounts.find_by_email(email)
    if user is None or not user.active:
        raise click.ClickException(f"There is no active user with the email {email!r}.")
    try:
        key, secret = api_keys.create(user, name=name, days=days,
                                      scopes=[s.strip() for s in scopes.split(",") if s.strip()])
        db.session.commit()
    except api_keys.ApiKeyError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"API key {key.name!r} for {user.name} <{user.email}>, {', '.join(key.scopes)}, "
               f"until {key.expires_at:%Y-%m-%d %H:%M} UTC (shown only this once):\n  {secret}")


@click.command("scim-token")
@with_appcontext
def scim_token_command():
    """Print a new SCIM token once (the one before stops working): the identity provider's
    bearer token for /scim/v2, stored only as a hash."""
    token, secret = scim_tokens.issue(actor=None)
    db.session.commit()
    click.echo(f"SCIM base URL: {current_app.config['BASE_URL']}/scim/v2\n"
               f"SCIM token {token.prefix}… (shown only this once; any token before it no "
               f"longer works):\n  {secret}")


@click.command("worker")
@click.option("--concurrency", default=8, show_default=True,
              help="How many deliveries are sent at once.")
@with_appcontext
def worker_command(concurrency):
    """Run the delivery dispatcher in this process until SIGINT or SIGTERM.

    Set SENDAUTH_DISPATCHER=off for the web processes when workers run on their own.
    """
    app = current_app._get_current_object()
    dispatcher = Dispatcher(app, concurrency=concurrency)
    hooks = Sender(app)

    def stop(signum, frame):
        # Only ask here, never wait: the handler runs in the main thread wherever it is, and a
        # SIGTERM that came while it started the webhook sender (holding the sender's lock)
        # waited for that thread, which waited for the lock: a worker that never ended.
        click.echo("Stopping: finishing the sends under way.")
        hooks.stop(timeout=0)
        dispatcher.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Dispatcher {dispatcher.name} running ({concurrency} at a time).")
    hooks.start()  # outgoing webhooks: a loop of their own, so no endpoint delays a channel
    dispatcher.run()
    hooks.stop()  # the webhook sends under way finish


def register(app):
    app.cli.add_command(create_user_command)
    app.cli.add_command(ensure_admin_command)
    app.cli.add_command(prepare_command)
    app.cli.add_command(enrolment_link_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(create_api_key_command)
    app.cli.add_command(scim_token_command)
