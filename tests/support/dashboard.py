"""The dashboard served by real processes (gunicorn, `flask worker`) on a SQLite database of
its own, for the fault tests and the dispatcher process tests."""
import json

from sqlalchemy import func, select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, Transaction

from . import servers
from .accounts import create_user
from .config import make_app
from .helpers import configure_pagerduty, send_request

BURST = 12
# Short enough for a test to see several retries in seconds; the shape is the product's.
RETRY_SETTINGS = {
    "DELIVERY_BACKOFF_BASE_SECONDS": 0.2,
    "DELIVERY_BACKOFF_CAP_SECONDS": 1.0,
    "DELIVERY_RATE_LIMITED_FLOOR_SECONDS": 0.5,
    "PAGERDUTY_CONNECT_TIMEOUT": 0.5,
    "PAGERDUTY_READ_TIMEOUT": 0.5,
    "DISPATCHER_IDLE_SECONDS": 0.5,
    "DELIVERY_LEASE_SECONDS": 3,
    "DELIVERY_RATE_LIMITS": json.dumps({"pagerduty": [1000, 1]}),
    "RATELIMIT_ENABLED": "false",
}


class Dashboard:
    """A SQLite database migrated the production way (a copy of ``migrated``, which `flask
    --app wsgi db upgrade` made once), people and PagerDuty set up through the services, and
    gunicorn (without Redis, its workers run the dispatcher thread) or `flask worker` processes
    serving it. ``app`` reads the same database from the test."""

    def __init__(self, tmp_path, fake, migrated, **settings):
        self.tmp_path = tmp_path
        self.database = tmp_path / "sendauth.db"
        migrated.copy(self.database)
        self.env = servers.environment(
            tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{self.database}",
            PAGERDUTY_EVENTS_URL=fake.url, BASE_URL="http://sendauth.test",
            **{**RETRY_SETTINGS, **settings})
        self.app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{self.database}",
                            SECRET_KEY=servers.SECRET_KEY)
        self.requestor = create_user(self.app, "requestor", "hana@example.com")
        self.reviewer = create_user(self.app, "reviewer", "rita@example.com")
        self.member = create_user(self.app, "member", "uma@example.com", notify_pagerduty=True)
        configure_pagerduty(self.app)
        self.processes = []

    def serve(self, name="gunicorn", **settings):
        server = servers.gunicorn(dict(self.env, **_env(settings)), self.tmp_path, name=name)
        self.processes.append(server)
        return server

    def dispatcher(self, name="worker"):
        process = servers.worker(self.env, self.tmp_path, name=name)
        self.processes.append(process)
        return process

    def send_burst(self, count=BURST):
        return [send_request(self.app, self.requestor, self.member, message=f"Burst {n}")
                for n in range(count)]

    def deliveries(self):
        with self.app.app_context():
            rows = db.session.execute(
                select(Transaction.public_id, Delivery.status, Delivery.attempts)
                .join(Delivery.transaction)).all()
            db.session.remove()
        return rows

    def sent_events(self):
        """Per transaction, how many ``delivery.sent`` events it has."""
        with self.app.app_context():
            rows = db.session.execute(
                select(Transaction.public_id, func.count(Event.id))
                .join(Event.transaction).where(Event.kind == "delivery.sent")
                .group_by(Transaction.public_id)).all()
            db.session.remove()
        return dict(rows)

    def close(self):
        for process in self.processes:
            process.stop()
        with self.app.app_context():
            db.engine.dispose()


def _env(settings):
    return {f"SENDAUTH_{k}": str(v) for k, v in settings.items()}
