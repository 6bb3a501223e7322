"""sendauth_dashboard.warm: a worker warmed before it takes traffic has what a first send
needs ready: its templates compiled, connections open in the pool, the send path's
statements compiled by a send rolled back."""
import pytest
from sqlalchemy import func, select
from sqlalchemy.util import LRUCache

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, Transaction
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.warm import FRAGMENT_TEMPLATES, WARM_CONNECTIONS, warm
from tests.support.helpers import send_request


def test_a_warmed_worker_has_its_templates_compiled_and_connections_open(app):
    with app.app_context():
        db.engine.dispose()
    app.jinja_env.cache.clear()

    warm(app)

    compiled = {name for _, name in app.jinja_env.cache.keys()}
    assert set(FRAGMENT_TEMPLATES) | {"transactions/new.html", "base.html"} <= compiled
    with app.app_context():
        assert db.engine.pool.checkedin() >= WARM_CONNECTIONS


@pytest.fixture
def compiled():
    """This test's own cache of compiled SQL (not the session's shared one): what is in it
    was compiled here."""
    return LRUCache(1000)


@pytest.fixture
def app_config(compiled):
    from sendauth_dashboard.config import DEFAULTS

    return {"SQLALCHEMY_ENGINE_OPTIONS": {**DEFAULTS["SQLALCHEMY_ENGINE_OPTIONS"],
                                          "execution_options": {"compiled_cache": compiled}}}


@pytest.mark.both_databases
def test_the_send_path_is_rehearsed_and_nothing_of_it_stays(app, stream_people, compiled):
    """A send made and rolled back: its statements compiled, no row, nothing published."""
    hana, _, uma = stream_people
    with app.app_context():
        counts = {table: db.session.scalar(select(func.count()).select_from(table))
                  for table in (Transaction, Event, Delivery)}
        db.session.remove()
    published = []
    runtime(app).broker.publish = published.append
    compiled.clear()

    warm(app)

    rehearsed = len(compiled)
    with app.app_context():
        assert {table: db.session.scalar(select(func.count()).select_from(table))
                for table in counts} == counts
        db.session.remove()
    assert published == []
    send_request(app, hana, uma)
    # What is left to compile: the reads after the commit (the rehearsal never commits).
    assert rehearsed > 15 and len(compiled) - rehearsed <= 5, (rehearsed, len(compiled))
