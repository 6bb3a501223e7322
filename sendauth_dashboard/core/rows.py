"""Single-row settings tables (an integration's, the organisation's): read and change them."""
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..extensions import db

_INSERT = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


def get_or_create(model, key, **values):
    """The row with primary key ``key``, created if missing, for a change about to be made.

    INSERT ... ON CONFLICT DO NOTHING, in the caller's database transaction: two processes
    racing both end with the one row, and a change that is rolled back leaves no row behind.
    (A savepoint would not: on SQLite its release commits when it opened the database transaction.)
    """
    row = db.session.get(model, key)
    if row is not None:
        return row
    insert = _INSERT[db.session.get_bind().dialect.name]
    db.session.execute(insert(model).values(**values).on_conflict_do_nothing())
    return db.session.get(model, key)


def default_row(model, **key):
    """An unsaved row with the columns' defaults, for reading settings nobody has saved yet."""
    defaults = {c.key: c.default.arg for c in model.__table__.columns
                if c.default is not None and c.default.is_scalar}
    return model(**{**defaults, **key})
