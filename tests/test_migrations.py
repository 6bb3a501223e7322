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
