"""Every channel goes through the same outbox, retries, events and status indicator."""
import pytest
from sqlalchemy import select

from sendauth_dashboard import channels
from sendauth_dashboard.channels import integration
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, User
from tests.support.helpers import answer_token, configure_sms, send_request

from ..test_delivery import dispatch, time_passes


@pytest.fixture
def people(app, make_user, case, fake):
    case.configure(app, fake)
    requestor = make_user("requestor", name="Hana Helpdesk")
    user = make_user("member", name="Uma User", email="uma@example.com", **case.prefs())
    return requestor, user


def deliveries(app):
    with app.app_context():
        return db.session.scalars(select(Delivery).order_by(Delivery.id)).all()


def status(app, case):
    with app.app_context():
        return integration.status_view(case.channel)


def test_a_request_is_delivered_once_with_message_context_and_link(app, people, case, fake):
    send_request(app, *people, message="Confirm the laptop swap", context="INC-7")
    assert dispatch(app) == ["sent"]
    ((recipient, text),) = case.sent(fake)
    assert recipient == case.reaches(people[1])
    assert "Hana Helpdesk" in text and "Confirm the laptop swap" in text and "INC-7" in text
    assert "http://sendauth.test/authenticate/" in text
    (d,) = deliveries(app)
    assert (d.channel, d.status, d.attempts, d.link_ciphertext) == (case.channel, "sent", 1, None)
    assert status(app, case).state == "success"


def test_a_temporary_failure_is_retried_and_the_status_shows_it_meanwhile(app, people, case,
                                                                          fake):
    send_request(app, *people)
    error = case.fail_temporarily(fake)
    assert dispatch(app) == ["retrying"]
    (d,) = deliveries(app)
    assert (d.status, d.last_error) == ("queued", error)
    assert (status(app, case).state, status(app, case).error) == ("retrying", error)
    time_passes(app)
    assert dispatch(app) == ["sent"]
    assert len(case.sent(fake)) == 1
    assert status(app, case).state == "success"
    with app.app_context():
        kinds = [e.kind for e in db.session.scalars(
            select(Event).where(Event.kind.like("delivery.%")).order_by(Event.id))]
    assert kinds == ["delivery.retrying", "delivery.sent"]


def test_a_refusal_fails_at_once_with_the_providers_words(app, people, case, fake):
    send_request(app, *people)
    case.refuse(fake, "Not for this recipient")
    assert dispatch(app) == ["failed"]
    (d,) = deliveries(app)
    assert (d.status, d.attempts) == ("failed", 1)
    assert d.last_error == case.refused_error("Not for this recipient")
    time_passes(app)
    assert dispatch(app) == []
    assert case.sent(fake) == []


def test_a_refusal_quoting_the_answer_link_never_stores_or_shows_the_token(app, client, auth,
                                                                          make_user, case, fake):
    case.configure(app, fake)
    requestor = make_user("requestor", name="Hana Helpdesk")
    user = make_user("member", name="Uma User", email="uma@example.com", **case.prefs())
    public_id = send_request(app, requestor, user)
    token = answer_token(app, public_id)
    case.refuse(fake, f"blocklisted URL: <http://sendauth.test/authenticate/{token}>")
    assert dispatch(app) == ["failed"]
    (d,) = deliveries(app)
    assert d.last_error.startswith(case.refused_error("blocklisted URL: <http://sendauth.test/"))
    assert token not in d.last_error and token[-4:] in d.last_error, "the rest is shown, masked"
    assert token not in status(app, case).error
    with app.app_context():
        assert all(token not in repr(e.data) for e in db.session.scalars(select(Event)))
    auth.login(requestor)
    html = client.get(f"/transactions/{public_id}").text
    assert "blocklisted URL" in html and token not in html
    auth.logout()
    auth.login(make_user("admin", **case.contact))
    html = client.get(f"/settings/{case.channel}").text
    assert "blocklisted URL" in html and token not in html


def test_disabling_the_channel_stops_queued_messages(app, people, case, fake):
    send_request(app, *people)
    with app.app_context():
        channels.channel(case.channel).settings_row().enabled = False
        db.session.commit()
    assert dispatch(app) == ["cancelled"]
    assert case.sent(fake) == []
    (d,) = deliveries(app)
    noun = channels.REGISTRY[case.channel].noun
    assert d.last_error == f"Not sent: the {noun} integration is disabled."


def test_an_sms_to_a_user_who_removed_their_number_meanwhile_is_cancelled_with_why(
        app, make_user, fake_twilio):
    app.config["TWILIO_API_URL"] = fake_twilio.base_url
    configure_sms(app)
    user = make_user("member", name="Uma User", notify_email=False, notify_sms=True,
                     phone="+14155550199")
    send_request(app, make_user("requestor"), user)
    with app.app_context():
        db.session.get(User, user.id).phone = None
        db.session.commit()
    assert dispatch(app) == ["cancelled"]
    (d,) = deliveries(app)
    assert d.last_error == "Not sent: Uma User has no phone number in their messaging preferences."
    assert fake_twilio.received == []
