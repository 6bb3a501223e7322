"""Databases for tests: each schema is built once per session (per xdist worker) and every test
gets it empty, instead of building it again per test.

- SQLite: ``create_all`` once into a template file; a test gets a copy of the file (a copy
  costs a tenth of building the schema).
- PostgreSQL: a database of the session's own, its schema built once; before each test its
  rows are deleted and its sequences restarted, so ids start at 1 as in a fresh database.
  Rows rather than transactions: tests serve the app from threads and other processes and
  open several connections, which a rollback around one connection would not see. DELETE
  of a test's few rows, in one round trip, is several times cheaper than TRUNCATE (which
  makes new files for every table).
- Migrated the production way (``flask --app wsgi db upgrade``, for tests that serve the app
  from gunicorn or ``flask worker``): run once per session, then copied (a file, or
  ``CREATE DATABASE ... TEMPLATE``).
"""
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine, make_url, text

from sendauth_dashboard.extensions import db

from .config import POSTGRES_URL, make_app, need


def build_schema(url, folder):
    """``create_all`` on the database at ``url`` (as the tests' apps see it)."""
    app = make_app(folder, SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        db.create_all()
        tables = [table.name for table in db.metadata.sorted_tables]
        db.session.remove()
        db.engine.dispose()
    return tables


class SqliteTemplate:
    """A SQLite file with the schema in it, copied for each test."""

    def __init__(self, path):
        self.path = path

    @classmethod
    def build(cls, folder):
        path = folder / "template.db"
        build_schema(f"sqlite:///{path}", folder)
        return cls(path)

    @classmethod
    def migrate(cls, folder):
        """A template made by ``flask --app wsgi db upgrade``, as production makes it."""
        from . import servers

        path = folder / "migrated.db"
        servers.flask(servers.environment(folder, SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}"),
                      "db", "upgrade")
        return cls(path)

    def copy(self, path):
        shutil.copyfile(self.path, path)
        return f"sqlite:///{path}"


class PostgresServer:
    """Databases of this session's own on the PostgreSQL server; all dropped at the end, so
    test runs on one machine never share rows."""

    def __init__(self):
        from sqlalchemy.exc import OperationalError

        self.admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT",
                                   connect_args={"connect_timeout": 3})
        self.prefix = f"sendauth_test_{os.getpid()}"
        self.names = []
        try:
            with self.admin.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as exc:
            self.admin.dispose()
            need(False,
                 f"PostgreSQL not reachable at {POSTGRES_URL} ({exc.orig.__class__.__name__})")

    def create(self, suffix="", template=None):
        """A new database; its URL. Durability is no concern of a test database: commits do not
        wait for the disk (``synchronous_commit``), which changes nothing a test can see."""
        name = f"{self.prefix}{suffix}"
        with self.admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {name}"
                                    + (f" TEMPLATE {template}" if template else "")))
            connection.execute(text(f"ALTER DATABASE {name} SET synchronous_commit = off"))
        self.names.append(name)
        return self.url(name)

    def drop(self, url):
        name = make_url(url).database
        self._drop(name)
        if name in self.names:
            self.names.remove(name)

    def url(self, name):
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def close(self):
        """Drop them all at once: each DROP DATABASE waits for a checkpoint (1 to 8 s apiece on a
        busy machine, 18 s at the end of a worker's session one by one), and drops that wait
        together share one."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._drop, list(self.names)))
        self.names.clear()
        self.admin.dispose()

    def _drop(self, name):
        with self.admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


class PostgresDatabase:
    """The session's PostgreSQL database with the schema built once; ``empty()`` before a test."""

    def __init__(self, url, folder):
        self.url = url
        tables = build_schema(url, folder)
        self._engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with self._engine.connect() as connection:
            sequences = connection.execute(text(
                "SELECT sequence_name FROM information_schema.sequences "
                "WHERE sequence_schema = 'public'")).scalars().all()
        self._reset = "; ".join(
            ["BEGIN", *(f"DELETE FROM {name}" for name in reversed(tables)),
             *(f"SELECT setval('{name}', 1, false)" for name in sequences), "COMMIT"])

    def empty(self):
        """Delete every row and restart every sequence; returns the URL."""
        with self._engine.connect() as connection:
            connection.exec_driver_sql(self._reset)
        return self.url

    def close(self):
        self._engine.dispose()


def unique_suffix():
    return f"_{uuid.uuid4().hex[:8]}"
