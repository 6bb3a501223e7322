"""Small helpers shared by tests: waiting on conditions, and product set-up done the
product's way."""
import time

from sendauth_dashboard import channels
from sendauth_dashboard.core.tokens import hash_token
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import User
from sendauth_dashboard.services.requests import transactions

# Made up for tests; not a key of any PagerDuty account.
TEST_KEY = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4AB12"
OTHER_TEST_KEY = "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1QqCD3"


def wait_until(condition, timeout=10.0, interval=0.02, message="condition"):
    """Return once ``condition()`` is truthy; fail at the deadline. Never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout} s")
        time.sleep(interval)


def configure_pagerduty(app, key=TEST_KEY, enabled=True, severity="critical",
                        webhook_secret=None):
    with app.app_context():
        channels.channel("pagerduty").update_settings(
            enabled=enabled, actor=None, values={"integration_key": key, "severity": severity,
                                                 "webhook_secret": webhook_secret})
        db.session.commit()


def send_request(app, requestor, user, message="Please confirm your password reset",
                 context="Ticket #4521"):
    """Create a transaction the way the form does; returns its public id."""
    with app.app_context():
        transaction = transactions.create(
            requestor=db.session.get(User, requestor.id), user_email=user.email,
            message=message, context=context,
        )
        db.session.commit()
        return transaction.public_id


def answer_token(app, public_id):
    """The token in the link the user was sent (read back from the outbox, as the channel would);
    None once a dispatcher has sent it (sending clears it there)."""
    from sendauth_dashboard.core.secrets import decrypt
    from sendauth_dashboard.models import Delivery, Transaction

    with app.app_context():
        ciphertext = db.session.scalar(
            db.select(Delivery.link_ciphertext).join(Transaction)
            .where(Transaction.public_id == public_id, Delivery.link_ciphertext.is_not(None)))
        return None if ciphertext is None else decrypt(ciphertext).rsplit("/", 1)[1]


def binding_code(app, token):
    """The code the requestor's page shows for the transaction behind ``token``."""
    from sendauth_dashboard.models import Transaction

    with app.app_context():
        return db.session.scalar(db.select(Transaction.binding_code)
                                 .where(Transaction.token_hash == hash_token(token)))


def verify_form(app, client, token, user, code=None, signer=None, **request_options):
    """The form a user's browser posts to verify: the right code (unless ``code`` is given) and
    a fresh assertion from their passkey (or ``signer``'s) for a challenge this page asked for.
    ``request_options`` go to the test client (``base_url``, ``headers``)."""
    import json

    from tests.support.web import csrf_token_from

    page = client.get(f"/authenticate/{token}", **request_options)
    assert page.status_code == 200, page.status_code
    csrf = csrf_token_from(page.text)
    headers = {**request_options.pop("headers", {}), "X-CSRFToken": csrf}
    options = client.post(f"/authenticate/{token}/passkey-options", headers=headers,
                          **request_options)
    assert options.status_code == 200, options.text
    return {"csrf_token": csrf, "decision": "verify", "code": code or binding_code(app, token),
            "credential": json.dumps((signer or user.authenticator).get(options.get_json()))}


def passkey_ids(app, user):
    """The ids of ``user``'s passkeys, oldest first."""
    from sendauth_dashboard.models import Passkey

    with app.app_context():
        return db.session.scalars(db.select(Passkey.id).where(Passkey.user_id == user.id)
                                  .order_by(Passkey.id)).all()


def database_at_rest(app):
    """Everything the database holds, as bytes: the SQLite files, or a pg_dump of PostgreSQL."""
    import subprocess
    from pathlib import Path

    with app.app_context():
        url = db.engine.url
        db.engine.dispose()
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    dump = subprocess.run(
        ["pg_dump", "--data-only", "-h", url.host, "-p", str(url.port or 5432),
         "-U", url.username, url.database], capture_output=True, check=True, timeout=60)
    return dump.stdout


# Made up for tests; not a login of any mail server.
SMTP_USERNAME = "sendauth-mailer"
SMTP_PASSWORD = "Sm7p-pa55w0rd-for-tests"


def configure_email(app, port, *, enabled=True, tls_mode="none", username=None, password=None,
                    from_address="sendauth@example.com"):
    with app.app_context():
        channels.channel("email").update_settings(enabled=enabled, actor=None, values={
            "host": "127.0.0.1", "port": str(port), "tls_mode": tls_mode, "username": username,
            "password": password, "from_address": from_address,
        })
        db.session.commit()


# Made up for tests; not an account of Twilio's.
TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_AUTH_TOKEN = "5eed" * 8
OTHER_TWILIO_AUTH_TOKEN = "cafe" * 8
TWILIO_SENDER = "+15005550006"


def configure_sms(app, *, enabled=True, auth_token=TWILIO_AUTH_TOKEN):
    with app.app_context():
        channels.channel("sms").update_settings(enabled=enabled, actor=None, values={
            "account_sid": TWILIO_ACCOUNT_SID, "auth_token": auth_token, "sender": TWILIO_SENDER,
        })
        db.session.commit()


# Made up for tests; not a token of any Slack app.
SLACK_BOT_TOKEN = "xoxb-1234567890-0987654321-madeUpForTestsOnly"
OTHER_SLACK_BOT_TOKEN = "xoxb-1111111111-2222222222-anotherMadeUpToken"


def configure_slack(app, *, enabled=True, bot_token=SLACK_BOT_TOKEN):
    with app.app_context():
        channels.channel("slack").update_settings(enabled=enabled, actor=None,
                                     values={"bot_token": bot_token})
        db.session.commit()


def every_get_url(app, **values):
    """One URL per GET route of the app (and one per static file), with ``values`` for the
    routes' arguments, e.g. ``public_id="..."``. Fails on an argument it has no value for, so a
    new route cannot slip past the tests that crawl."""
    import itertools
    from pathlib import Path

    from flask import url_for

    from sendauth_dashboard import channels

    values.setdefault("name", list(channels.names()))
    values.setdefault("schema_id", "urn:ietf:params:scim:schemas:core:2.0:User")
    static = Path(app.static_folder)
    values.setdefault("filename", [p.relative_to(static).as_posix()
                                   for p in sorted(static.rglob("*")) if p.is_file()])
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods:
                continue
            missing = rule.arguments - set(values)
            assert not missing, f"no value for {sorted(missing)} of {rule.rule}: pass one"
            names = sorted(rule.arguments)
            choices = [v if isinstance(v, (list, tuple)) else [v] for v in
                       (values[name] for name in names)]
            for combination in itertools.product(*choices):
                urls.append(url_for(rule.endpoint, **dict(zip(names, combination, strict=True))))
    return urls


def database_rows(app):
    """Every row of every table, in a form to compare: a refused request leaves it equal."""
    with app.app_context():
        snapshot = {}
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(table.select()).all()
            snapshot[table.name] = sorted(tuple(map(repr, row)) for row in rows)
        db.session.remove()
        return snapshot


def enrol(client, link, password=None, authenticator=None, name="Work laptop"):
    """Open an enrolment link and register a passkey through it the way its page's script does
    (for an invitation, with the password chosen). Returns (response, authenticator)."""
    import json

    from tests.support.authenticator import SoftAuthenticator
    from tests.support.web import csrf_token_from

    path = "/enrol/" + link.rsplit("/enrol/", 1)[1]
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    csrf = csrf_token_from(page.text)
    options = client.post(f"{path}/options", headers={"X-CSRFToken": csrf})
    assert options.status_code == 200, options.text
    authenticator = authenticator or SoftAuthenticator("http://sendauth.test")
    form = {"csrf_token": csrf, "name": name,
            "credential": json.dumps(authenticator.create(options.get_json()))}
    if password is not None:
        form.update(password=password, confirm=password)
    return client.post(path, data=form), authenticator


def dispatch(app):
    """Send every delivery that is due, as the dispatcher would, until none is left."""
    from sendauth_dashboard.services.outbox.dispatcher import Dispatcher

    return Dispatcher(app, name="test-dispatcher").run_until_idle()


def time_passes(app):
    """Everything scheduled for later is due now (what waiting out a backoff would do)."""
    from datetime import timedelta

    from sendauth_dashboard.models import Delivery, utcnow

    with app.app_context():
        db.session.execute(db.update(Delivery).where(Delivery.status == "queued")
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def masked(secret, visible=4):
    """How a page shows a stored secret: a bullet for each hidden character, then its last
    ``visible`` ones (``••••…AB12``). Look for this, not for the last four characters alone,
    which could be anywhere in a page."""
    return "•" * (len(secret) - visible) + secret[-visible:]
