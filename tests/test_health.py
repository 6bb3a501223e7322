import pytest

from sendauth_dashboard import create_app
from tests.support.config import base_test_config


@pytest.mark.both_databases
def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_does_not(tmp_path):
    missing = tmp_path / "no-such-dir" / "x.db"
    app = create_app(base_test_config(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{missing}"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"


def test_pages_get_a_503_page_when_the_database_does_not_answer(tmp_path):
    missing = tmp_path / "no-such-dir" / "x.db"
    app = create_app(base_test_config(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{missing}"))
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1"
        session["sign_in"] = "a signed-in session's token"
    response = client.get("/")
    assert response.status_code == 503
    assert "database is not answering" in response.text


def test_healthz_answers_503_while_another_connection_holds_sqlite_write_lock(tmp_path):
    """Reads go on under WAL while another connection writes: only a write shows the lock."""
    import sqlite3

    from sendauth_dashboard.extensions import db

    app = create_app(base_test_config(tmp_path, SQLITE_BUSY_TIMEOUT_SECONDS=0.2))
    with app.app_context():
        db.create_all()
    client = app.test_client()
    lock = sqlite3.connect(tmp_path / "test.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        response = client.get("/healthz")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "busy"}
    assert client.get("/healthz").status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_healthz_says_busy_within_a_second_while_sqlite_is_write_locked(tmp_path):
    """With the product's 5 s busy timeout it hung for the timeout; a probe must answer in
    time for a load balancer to act on it. The connection keeps its own timeout after."""
    import sqlite3
    import time

    from sendauth_dashboard.extensions import db

    app = create_app(base_test_config(tmp_path))
    assert app.config["SQLITE_BUSY_TIMEOUT_SECONDS"] == 5.0
    with app.app_context():
        db.create_all()
    client = app.test_client()
    lock = sqlite3.connect(tmp_path / "test.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        response = client.get("/healthz")
        took = time.monotonic() - started
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert took < 1.0, f"took {took:.2f} s"
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "busy"}
    with app.app_context():
        timeout = db.session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert timeout == 5000
        db.session.rollback()
        db.engine.dispose()


def test_the_503_and_500_pages_are_titled_in_words(tmp_path):
    """Their titles read "<property object at 0x...>": the class's name property, not a name."""
    missing = tmp_path / "no-such-dir" / "x.db"
    app = create_app(base_test_config(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{missing}",
                                      PROPAGATE_EXCEPTIONS=False))

    @app.get("/a-bug")
    def a_bug():
        raise RuntimeError("a bug")

    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1"
        session["sign_in"] = "a signed-in session's token"
    unavailable = client.get("/")
    assert unavailable.status_code == 503
    assert "<h1>Service Unavailable</h1>" in unavailable.text
    assert "property object" not in unavailable.text
    failed = app.test_client().get("/a-bug")
    assert failed.status_code == 500
    assert "Internal Server Error" in failed.text and "property object" not in failed.text
