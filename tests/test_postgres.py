"""What only PostgreSQL can show: migrations there, and event ids that commit in order."""
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from sendauth_dashboard import create_app
from sendauth_dashboard.core import event_log
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import in_schema_of
from tests.support.config import base_test_config

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_postgres(postgres_server):
    url = postgres_server.create("_migrations")
    yield url
    postgres_server.drop(url)


def test_migrations_build_the_models_schema_on_postgresql_and_go_back(tmp_path, empty_postgres):
    app = create_app(base_test_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_postgres))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "compare_type": True, "include_object": in_schema_of(connection.dialect.name)})
            assert compare_metadata(context, db.metadata) == []
        downgrade(revision="base")
        assert inspect(db.engine).get_table_names() == ["alembic_version"]
        db.engine.dispose()


@pytest.fixture
def database_url(postgres_database):
    """This module is about PostgreSQL only (SQLite has one writer at a time)."""
    return postgres_database.empty()


def test_a_later_event_waits_for_an_earlier_one_to_commit(app):
    first_flushed, release_first = threading.Event(), threading.Event()
    second_flushed = threading.Event()
    ids = {}

    def first():
        with app.app_context():
            ids["first"] = flush_event("first")
            first_flushed.set()
            release_first.wait(10)
            db.session.commit()

    def second():
        first_flushed.wait(10)
        with app.app_context():
            ids["second"] = flush_event("second")
            second_flushed.set()
            db.session.commit()

    def flush_event(kind):
        event = event_log.record(f"test.{kind}")
        db.session.flush()
        return event.id

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    assert not second_flushed.wait(0.5), "the second writer got an id while the first was open"
    release_first.set()
    for thread in threads:
        thread.join(10)
    assert ids["second"] > ids["first"]
