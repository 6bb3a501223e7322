import click
from sqlalchemy import select, update

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, User
from tests.support.accounts import PASSWORD


def test_create_user_with_every_option(app, runner, auth):
    result = runner.invoke(args=["create-user", "--email", "Rita@Example.com", "--name", "Rita",
                                 "--role", "requestor", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert "Created requestor Rita <rita@example.com>." in result.output
    assert auth.login("rita@example.com").status_code == 302


def test_create_user_asks_for_the_password_when_left_out(app, runner):
    result = runner.invoke(args=["create-user", "--email", "p@example.com", "--name", "P"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.email == "p@example.com")) == "member"


def test_create_user_explains_a_refusal(runner, make_user):
    make_user("member", email="taken@example.com")
    result = runner.invoke(args=["create-user", "--email", "TAKEN@example.com", "--name", "T",
                                 "--password", PASSWORD])
    assert result.exit_code == 1
    assert "There is already an account for taken@example.com." in result.output
    result = runner.invoke(args=["create-user", "--email", "x@example.com", "--name", "X",
                                 "--role", "owner", "--password", PASSWORD])
    assert result.exit_code == 2
    assert "'owner' is not one of" in result.output


def test_ensure_admin_creates_an_admin_once_and_prints_the_password_once(runner, auth):
    first = runner.invoke(args=["ensure-admin"])
    assert first.exit_code == 0, first.output
    password = next(line.split()[-1] for line in first.output.splitlines()
                    if line.strip().startswith("password"))
    assert auth.login("admin@example.com", password).status_code == 302

    second = runner.invoke(args=["ensure-admin"])
    assert second.exit_code == 0
    assert second.output == ""


def test_ensure_admin_gives_an_admin_back_when_none_is_active(app, runner, auth, make_user):
    admin = make_user("admin", email="ada@example.com")
    make_user("member", email="uma@example.com")
    with app.app_context():  # what a race or a slip left: no active admin
        db.session.execute(update(User).where(User.id == admin.id).values(active=False))
        db.session.commit()
    result = runner.invoke(args=["ensure-admin", "--email", "ADA@example.com"])
    assert result.exit_code == 0, result.output
    assert "ada@example.com is an active admin again" in result.output
    assert "their own (unchanged)" in result.output
    assert auth.login("ada@example.com").status_code == 302
    with app.app_context():
        kinds = [e.kind for e in db.session.scalars(select(Event).order_by(Event.id))]
    assert kinds[-2:] == ["user.reactivated", "user.signed_in"]
    assert runner.invoke(args=["ensure-admin"]).output == "", "one active admin is enough"


def test_ensure_admin_can_promote_a_member_with_a_new_password(app, runner, auth, make_user):
    make_user("member", email="uma@example.com")
    result = runner.invoke(args=["ensure-admin", "--email", "uma@example.com",
                                 "--new-password"])
    assert result.exit_code == 0, result.output
    password = next(line.split()[-1] for line in result.output.splitlines()
                    if line.strip().startswith("password"))
    assert auth.login("uma@example.com", password).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.email == "uma@example.com")) == (
            "admin")


def test_make_runs_start_migrates_only_when_the_database_is_behind(app, monkeypatch):
    """`make run` on the same database again: no migration, one start (issue 31)."""
    from sqlalchemy import text

    from sendauth_dashboard import cli

    upgrades = []
    monkeypatch.setattr(cli.flask_migrate, "upgrade", lambda: upgrades.append("upgrade"))
    with app.app_context():
        scripts = cli.ScriptDirectory(app.extensions["migrate"].directory)
        head = scripts.get_revision(scripts.get_current_head())
        db.session.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        db.session.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head.revision})
        db.session.commit()
        assert cli.schema_is_current()
        cli.prepare()
        assert upgrades == []
        assert db.session.scalar(select(User.role).where(User.email == "admin@example.com")) \
            == "admin"
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"),
                           {"v": head.down_revision})
        db.session.commit()
        cli.prepare()
    assert upgrades == ["upgrade"]


def test_flask_run_prepares_only_when_make_run_asks(app, monkeypatch):
    from flask.cli import run_command

    import sendauth_dashboard
    from sendauth_dashboard import cli

    prepared = []
    monkeypatch.setattr(cli, "prepare", lambda: prepared.append(True))
    monkeypatch.setattr(sendauth_dashboard, "start_thread", lambda app: None)
    monkeypatch.setattr(sendauth_dashboard.webhook_sender, "start_thread", lambda app: None)
    for asked in (False, True):
        app.config["PREPARE_ON_RUN"] = asked
        with click.Context(run_command, info_name="run") as context:
            context.params["reload"] = False
            sendauth_dashboard.serve(app)
    sendauth_dashboard.serve(app)  # a gunicorn worker: never, even when asked
    assert prepared == [True]
