"""Single-row settings tables (an integration's, the organisation's): read and change them;
single-use rows (an enrolment link, a passkey challenge): spend one once; and rows locked
while a count read under the lock decides a write (the last admin, the send limits)."""
from sqlalchemy import false, select, update
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


def use_once(model, row_id, now):
    """Mark the single-use row ``row_id`` used at ``now``, in the caller's database transaction;
    False when it was used already or has expired. One UPDATE that tests and sets, so of two
    requests racing to use it, one wins."""
    used = db.session.execute(
        update(model)
        .where(model.id == row_id, model.used_at.is_(None), model.expires_at > now)
        .values(used_at=now).execution_options(synchronize_session="fetch"))
    return used.rowcount == 1


def lock(model, *where):
    """Lock the rows of ``model`` that match ``where`` until the caller's database transaction
    ends: a count read next cannot change under it before this transaction commits, so two
    requests cannot both pass a limit that has room for one.

    PostgreSQL locks the rows (FOR UPDATE, in id order, so two lockers never deadlock);
    SQLite ignores FOR UPDATE, so there a write of nothing first takes the database's write
    lock (waiting up to SQLITE_BUSY_TIMEOUT_SECONDS for another writer)."""
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(model).where(false()).values({model.id: model.id})
                           .execution_options(synchronize_session=False))
    db.session.execute(select(model.id).where(*where).order_by(model.id).with_for_update()).all()


def upsert_adding(model, rows, key_columns, column):
    """Insert ``rows``; where one with the same ``key_columns`` exists, add to its ``column``
    instead (one statement: writers racing each other both count)."""
    if not rows:
        return
    insert = _INSERT[db.session.get_bind().dialect.name](model).values(rows)
    db.session.execute(insert.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={column: getattr(model, column) + getattr(insert.excluded, column)}))
