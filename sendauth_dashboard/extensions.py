"""Flask extensions, created once here and bound to the app in ``create_app``."""
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# Named constraints, so migrations can alter them on every database (SQLite included).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Per client address (REMOTE_ADDR; behind a proxy see PROXY_FIX_X_FOR). Only the views that
# say so are limited. If the storage (Redis) is unreachable, requests go through and the
# error is logged: a broken counter must not lock everyone out of signing in.
def client_address_key():
    """The client's address, under this installation's SENDAUTH_REDIS_CHANNEL_PREFIX: two
    installations sharing one Redis keep their counts apart."""
    return f"{current_app.config['REDIS_CHANNEL_PREFIX']}:{get_remote_address()}"


limiter = Limiter(key_func=client_address_key, key_prefix="sendauth", swallow_errors=True,
                  headers_enabled=False)


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record):
    """WAL lets readers go on while one writer writes; foreign keys are off in SQLite by default.
    (The busy timeout is the driver's ``timeout``: SQLITE_BUSY_TIMEOUT_SECONDS.)"""
    if type(dbapi_connection).__module__.split(".")[0] != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
