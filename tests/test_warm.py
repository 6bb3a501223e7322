"""sendauth_dashboard.warm: a worker warmed before it takes traffic has what a first send
needs ready: its templates compiled, connections open in the pool."""
from sendauth_dashboard.extensions import db
from sendauth_dashboard.warm import FRAGMENT_TEMPLATES, WARM_CONNECTIONS, warm


def test_a_warmed_worker_has_its_templates_compiled_and_connections_open(app):
    with app.app_context():
        db.engine.dispose()
    app.jinja_env.cache.clear()

    warm(app)

    compiled = {name for _, name in app.jinja_env.cache.keys()}
    assert set(FRAGMENT_TEMPLATES) | {"transactions/new.html", "base.html"} <= compiled
    with app.app_context():
        assert db.engine.pool.checkedin() >= WARM_CONNECTIONS
