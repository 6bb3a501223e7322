"""Warming a web worker before it takes traffic, so its first send answers like any other."""
from sqlalchemy import select

from .core.event_log import latest_event_id
from .extensions import db
from .models import User
from .runtime import runtime

# Connections opened into the pool: the few a send and the pages beside it use at once.
WARM_CONNECTIONS = 4
# The templates whose macros draw a live event's markup as it is recorded (services.live.messages).
FRAGMENT_TEMPLATES = ("transactions/_row.html", "transactions/_timeline.html",
                      "transactions/_outcome.html")


def warm(app):
    """Compile every template, open database connections, and serve the pages that touch the
    rest once, in this process, before it answers anyone.

    A worker compiles a template, opens a connection, and compiles a statement the first time
    it needs one: the first send after a worker started paid for all of them, 1,040 ms against
    some 100 ms (issue 26), just when an operator checks that a deploy went well. Nothing is
    written: /healthz takes SQLite's write lock and gives it back."""
    with app.app_context():
        templates = app.jinja_env
        for name in templates.list_templates(extensions=("html", "txt")):
            templates.get_template(name)
        with app.test_request_context(base_url=app.config["BASE_URL"]):
            for name in FRAGMENT_TEMPLATES:
                templates.get_template(name).module  # noqa: B018 (builds the macros once)
        _open_connections(WARM_CONNECTIONS)
        runtime(app).broker.warm()
        latest_event_id()
        db.session.scalar(select(User).limit(1))
        db.session.remove()
        rehearse_a_send()
    client = app.test_client()
    for page in ("/healthz", "/login"):
        client.get(page)


# How many people a rehearsal looks through for one who could be sent a request.
REHEARSAL_CANDIDATES = 20


def rehearse_a_send():
    """A send made and rolled back, so the send path's statements are compiled before the
    first real one: SQLAlchemy compiles each statement the first time it runs (15 of them,
    about half of the first send's 35 ms, in process). Nothing stays: no row, nothing
    published or woken (that follows a commit); on PostgreSQL an id may be skipped, as any
    rolled-back send skips one. Nothing is rehearsed when no one here could send or be sent
    a request."""
    from .services.requests import transactions

    try:
        people = db.session.scalars(
            select(User).where(User.active).order_by(User.id).limit(REHEARSAL_CANDIDATES)).all()
        requestor = next((person for person in people if person.has_role("requestor")), None)
        for user in people if requestor is not None else ():
            if user.id == requestor.id:
                continue
            try:
                transactions.create(requestor=requestor, user_email=user.email,
                                    message="A rehearsal, never sent", context="")
                db.session.flush()
                return
            except transactions.TransactionError:
                db.session.rollback()
    finally:
        db.session.rollback()
        db.session.remove()


def _open_connections(count):
    """``count`` connections into the pool, each used once (a pool opens one only when asked,
    and an idle pool keeps them)."""
    connections = [db.engine.connect() for _ in range(count)]
    for connection in connections:
        connection.exec_driver_sql("SELECT 1")
        connection.close()
