"""Email through the outbox: an address or a name the email cannot carry is a failed delivery
with its reason, never a delivery stuck in ``sending``."""
import pytest
from sqlalchemy import select

from sendauth_dashboard.channels import integration
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, User
from tests.support.helpers import configure_email, dispatch, send_request

from .fakes.smtp import FakeSmtp


@pytest.fixture
def smtputf8_server():
    fake = FakeSmtp(smtputf8=True).start()
    yield fake
    fake.stop()


def outcome(app):
    with app.app_context():
        (delivery,) = db.session.scalars(select(Delivery)).all()
        events = db.session.scalars(select(Event).where(Event.kind.like("delivery.%"))).all()
        return (delivery.status, delivery.attempts, delivery.last_error,
                [(e.kind, e.data.get("error")) for e in events],
                integration.status_view("email").state)


def test_jurgen_gets_his_email_through_a_server_that_offers_smtputf8(app, make_user,
                                                                     smtputf8_server):
    configure_email(app, smtputf8_server.port)
    user = make_user("member", email="jürgen@example.com", name="Jürgen Müller")
    send_request(app, make_user("requestor", name="Hana Helpdesk"), user)
    assert dispatch(app) == ["sent"]
    (received,) = smtputf8_server.received
    assert received.rcpt_tos == ["jürgen@example.com"]
    assert str(received.message["To"]) == "Jürgen Müller <jürgen@example.com>"
    assert outcome(app)[:2] == ("sent", 1)


def test_without_smtputf8_jurgens_delivery_fails_and_says_why(app, make_user, fake_smtp):
    configure_email(app, fake_smtp.port)
    user = make_user("member", email="jürgen@example.com")
    send_request(app, make_user("requestor"), user)
    assert dispatch(app) == ["failed"]
    status, attempts, error, events, indicator = outcome(app)
    assert (status, attempts, indicator) == ("failed", 1, "error")
    assert error.startswith(f"The SMTP server at 127.0.0.1:{fake_smtp.port} does not offer "
                            "SMTPUTF8") and "(jürgen@example.com)" in error
    assert events == [("delivery.failed", error)]
    assert fake_smtp.received == []


def test_an_email_that_cannot_be_written_is_a_failed_delivery_with_the_reason(app, make_user,
                                                                             fake_smtp):
    configure_email(app, fake_smtp.port)
    requestor = make_user("requestor", name="Hana")
    with app.app_context():  # a name saved before names were checked for control characters
        db.session.get(User, requestor.id).name = "Hana\nBcc: everyone@example.com"
        db.session.commit()
    send_request(app, requestor, make_user("member"))
    assert dispatch(app) == ["failed"]
    status, attempts, error, events, indicator = outcome(app)
    assert (status, attempts, indicator) == ("failed", 1, "error")
    assert error.startswith("The email could not be written: Header values may not contain "
                            "linefeed or carriage return characters.")
    assert events == [("delivery.failed", error)]
    assert fake_smtp.received == []
