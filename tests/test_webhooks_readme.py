"""The README's receiver, as written there, verifies and records transaction.verified within a
second of the user's answer."""
import contextlib
import io
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Transaction, User
from sendauth_dashboard.runtime import runtime
from sendauth_dashboard.services.requests import transactions
from sendauth_dashboard.services.webhooks import endpoints
from sendauth_dashboard.services.webhooks.sender import Sender
from tests.support.helpers import configure_pagerduty, send_request, wait_until

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_receiver(secret):
    section = README.read_text().split("## Webhooks:", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    assert '"whsec_…"' in code
    scope = {"__name__": "receiver"}
    exec(code.replace('"whsec_…"', repr(secret)), scope)  # noqa: S102 (our own README)
    return scope


def test_the_readme_receiver_records_a_verified_request_within_a_second(app, make_user):
    app.config["WEBHOOKS_ALLOW_PRIVATE_NETWORKS"] = True
    configure_pagerduty(app)
    hana = make_user("requestor", name="Hana")
    uma = make_user("member", name="Uma", notify_pagerduty=True)
    with app.app_context():
        endpoint, secret = endpoints.create("http://127.0.0.1:1/hooks/sendauth", "README",
                                            ["transaction.verified"], True, actor=None)
        db.session.commit()
        endpoint_id = endpoint.id
    receiver = readme_receiver(secret)
    server = make_server("127.0.0.1", 0, receiver["app"], threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sender = runtime(app).webhook_sender = Sender(app, name="readme")
    printed = io.StringIO()
    try:
        with app.app_context():
            endpoint = endpoints.find(endpoint_id)
            endpoint.url = f"http://127.0.0.1:{server.server_port}/hooks/sendauth"
            db.session.commit()
        sender.start()
        public_id = send_request(app, hana, uma)
        with contextlib.redirect_stdout(printed), app.app_context():
            t = db.session.scalar(db.select(Transaction).filter_by(public_id=public_id))
            transactions.answer(t, "verify", user=db.session.get(User, uma.id),
                                data={"proof": "passkey"})
            db.session.commit()
            answered = time.monotonic()
            wait_until(lambda: receiver["seen"], timeout=5)
            took = time.monotonic() - answered
    finally:
        sender.stop(timeout=5)
        server.shutdown()
    assert "Uma verified (passkey)" in printed.getvalue()
    print(f"README receiver: transaction.verified recorded {took * 1000:.0f} ms after the answer")
    assert took < 1.0, f"{took:.3f} s"
