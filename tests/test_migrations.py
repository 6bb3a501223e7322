"""`flask --app wsgi db upgrade` builds the schema the models describe, and can go back."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from sendauth_dashboard import create_app
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import in_schema_of
from tests.support.config import base_test_config


def migrated_app(tmp_path):
    return create_app(base_test_config(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/m.db"))


def test_db_upgrade_command_creates_the_schema_the_models_describe(tmp_path):
    app = migrated_app(tmp_path)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "include_object": in_schema_of(connection.dialect.name)})
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_removes_every_table(tmp_path):
    app = migrated_app(tmp_path)
    with app.app_context():
        upgrade()
        assert "transactions" in inspect(db.engine).get_table_names()
        downgrade(revision="base")
        assert inspect(db.engine).get_table_names() == ["alembic_version"]


def test_a_sqlite_database_with_requests_in_it_migrates_to_the_trust_schema_and_back(tmp_path):
    """0006 rebuilds tables that other rows refer to (SQLite copies and drops them): the rows
    and every foreign key survive, both ways."""
    from sqlalchemy import text

    app = migrated_app(tmp_path)
    with app.app_context():
        upgrade(revision="0003")
        with db.engine.begin() as connection:
            for statement in (
                "INSERT INTO users (id, email, name, password_hash, role, active, "
                "session_version, created_at, notify_pagerduty, notify_email, notify_sms, "
                "notify_slack) VALUES (1, 'a@example.com', 'A', 'h', 'admin', 1, 0, "
                "'2026-01-01 00:00:00', 0, 1, 0, 0), (2, 'b@example.com', 'B', 'h', 'member', "
                "1, 0, '2026-01-01 00:00:00', 0, 1, 0, 0)",
                "INSERT INTO transactions (id, public_id, requestor_id, user_id, message, "
                "context, status, token_hash, created_at, expires_at, binding_code, "
                "binding_choices, wrong_picks) VALUES (1, 'p', 1, 2, 'm', '', 'pending', 't', "
                "'2026-01-01 00:00:00', '2027-01-01 00:00:00', '12', '12 34 56', 0)",
                "INSERT INTO deliveries (transaction_id, channel, status, attempts, "
                "next_attempt_at, created_at) VALUES (1, 'email', 'queued', 0, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                "INSERT INTO passkey_challenges (transaction_id, user_id, challenge, created_at, "
                "expires_at) VALUES (1, 2, 'c', '2026-01-01 00:00:00', '2027-01-01 00:00:00')",
            ):
                connection.execute(text(statement))
        upgrade(revision="0006")
        with db.engine.connect() as connection:
            assert connection.execute(text(
                "SELECT binding_code, risks FROM transactions")).all() == [("12", "[]")]
            assert connection.execute(text(
                "SELECT purpose, transaction_id FROM passkey_challenges")).all() == [("verify", 1)]
            assert connection.execute(text("SELECT count(*) FROM deliveries")).scalar() == 1
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
        downgrade(revision="0003")
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM transactions")).scalar() == 1
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []


def test_a_registrar_goes_back_to_reviewer_when_0012_is_undone(tmp_path):
    """The users.role CHECK constraint takes a registrar after 0012 (SQLite rebuilds the table
    in batch mode); going back keeps the person, with the reviewer's powers their role had."""
    from sqlalchemy import text

    app = migrated_app(tmp_path)
    with app.app_context():
        upgrade(revision="0012")
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO users (id, email, name, password_hash, role, active, "
                "session_version, created_at, notify_pagerduty, notify_email, notify_sms, "
                "notify_slack) VALUES (1, 'r@example.com', 'R', 'h', 'registrar', 1, 0, "
                "'2026-01-01 00:00:00', 0, 1, 0, 0)"))
        downgrade(revision="0011")
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT role FROM users")).all() == [("reviewer",)]


def test_the_insight_tallies_migration_counts_the_requests_already_there(tmp_path):
    """0015 fills UTC's tallies from the rows, as the dashboard counts them afterwards
    (services.reports.tallies): a request sent a moment before midnight, answered after it,
    counts on its day, in whole seconds on the clock."""
    from sqlalchemy import text

    from sendauth_dashboard.services.reports import tallies

    app = migrated_app(tmp_path)
    with app.app_context():
        upgrade(revision="0011")
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO users (id, email, name, password_hash, role, active, "
                "session_version, created_at, notify_pagerduty, notify_email, notify_sms, "
                "notify_slack) VALUES (1, 'a@example.com', 'A', 'h', 'requestor', 1, 0, "
                "'2026-01-01 00:00:00', 0, 1, 0, 0), (2, 'b@example.com', 'B', 'h', 'member', "
                "1, 0, '2026-01-01 00:00:00', 0, 1, 0, 0)"))
            for n, (status, created, completed) in enumerate([
                    ("verified", "2026-03-30 23:59:59.999999", "2026-03-31 00:00:20.400000"),
                    ("denied", "2026-03-31 10:00:00.000000", "2026-03-31 10:00:45.500000"),
                    ("cancelled", "2026-03-31 11:00:00.000000", "2026-03-31 11:00:05.000000"),
                    ("pending", "2026-03-31 12:00:00.000000", None)]):
                connection.execute(text(
                    "INSERT INTO transactions (id, public_id, requestor_id, user_id, message, "
                    "context, status, token_hash, created_at, expires_at, completed_at, risks) "
                    "VALUES (:id, :id, 1, 2, 'm', '', :status, :id, :created, :created, "
                    ":completed, '[]')"),
                    {"id": n + 1, "status": status, "created": created, "completed": completed})
                connection.execute(text(
                    "INSERT INTO deliveries (transaction_id, channel, action, status, attempts, "
                    "next_attempt_at, created_at, completed_at) VALUES (:id, 'email', 'notify', "
                    ":status, 1, :created, :created, :completed)"),
                    {"id": n + 1, "created": created, "completed": completed,
                     "status": "queued" if completed is None else "sent"})
        upgrade()
        with db.engine.connect() as connection:
            migrated = sorted(connection.execute(text(
                "SELECT offset_minutes, day, subject, key, outcome, seconds, count "
                "FROM insight_tallies")).all())
        tallies.refill()
        with db.engine.connect() as connection:
            counted = sorted(connection.execute(text(
                "SELECT offset_minutes, day, subject, key, outcome, seconds, count "
                "FROM insight_tallies")).all())
    assert migrated == counted
    assert (0, "2026-03-30", "answer", "", "", 21, 1) in migrated
    assert (0, "2026-03-31", "requestor", "1", "", -1, 3) in migrated
    assert len([row for row in migrated if row[2] == "delivery"]) == 3
