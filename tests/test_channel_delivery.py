"""Email, SMS and Slack go through the same outbox, retries, events and status as PagerDuty."""
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, User
from sendauth_dashboard.services import integrations

from .fakes.slack import Answer as SlackAnswer
from .fakes.twilio import Answer as TwilioAnswer
from .helpers import configure_email, configure_slack, configure_sms, send_request
from .test_delivery import dispatch, time_passes


@dataclass
class Case:
    channel: str
    fake: str
    configure: callable
    # The user's messaging preferences that make this the only channel reaching them.
    prefs: dict
    # Makes the fake answer the next send with a temporary failure; returns the error text.
    fail_temporarily: callable
    # Makes the fake refuse the next send for good; returns the error text.
    refuse: callable
    # What the fake received, one text per message, oldest first.
    messages: callable
    # The app's configuration that points the channel at the fake.
    app_config: callable = lambda fake: {}

    def __str__(self):
        return self.channel


def email_fail_temporarily(fake):
    fake.refuse_next_message("451 4.3.0 Mailbox busy, try again later")
    return "SMTP 451: 4.3.0 Mailbox busy, try again later"


def email_refuse(fake):
    fake.refuse_next_recipient("550 5.1.1 User unknown")
    return "SMTP 550 for uma@example.com: 5.1.1 User unknown"


def sms_fail_temporarily(fake):
    fake.answer_next(TwilioAnswer.too_many_requests())
    return "HTTP 429: Twilio error 20429: Too Many Requests"


def sms_refuse(fake):
    fake.answer_next(TwilioAnswer.invalid_to("+14155550199"))
    return "HTTP 400: Twilio error 21211: The 'To' number +14155550199 is not a valid phone number."


def slack_fail_temporarily(fake):
    fake.answer_next(SlackAnswer.rate_limited(retry_after=1))
    return "HTTP 429: Slack error ratelimited (Slack asks to slow down)"


def slack_refuse(fake):
    fake.answer_next(SlackAnswer.error("account_inactive"))
    return "Slack error account_inactive (the bot token belongs to a deleted user or workspace)"


CASES = [
    Case("email", "fake_smtp", lambda app, fake: configure_email(app, fake.port),
         {"notify_email": True}, email_fail_temporarily, email_refuse,
         lambda fake: [r.body() for r in fake.received]),
    Case("sms", "fake_twilio", lambda app, fake: configure_sms(app),
         {"notify_sms": True, "phone": "+14155550199"}, sms_fail_temporarily, sms_refuse,
         lambda fake: [m["Body"] for m in fake.messages],
         app_config=lambda fake: {"TWILIO_API_URL": fake.base_url}),
    Case("slack", "fake_slack", lambda app, fake: configure_slack(app),
         {"notify_slack": True, "slack_member_id": "W012A3CDE"}, slack_fail_temporarily,
         slack_refuse, lambda fake: [m["text"] for m in fake.messages],
         app_config=lambda fake: {"SLACK_API_URL": fake.url}),
]


@pytest.fixture(params=CASES, ids=str)
def case(request):
    return request.param


@pytest.fixture
def fake(case, request):
    return request.getfixturevalue(case.fake)


@pytest.fixture
def app_config(case, fake):
    return case.app_config(fake)


@pytest.fixture
def people(app, make_user, case, fake):
    case.configure(app, fake)
    requestor = make_user("requestor", name="Hana Helpdesk")
    user = make_user("member", name="Uma User", email="uma@example.com", **{
        "notify_email": False, **case.prefs})
    return requestor, user


def deliveries(app):
    with app.app_context():
        return db.session.scalars(select(Delivery).order_by(Delivery.id)).all()


def status(app, case):
    with app.app_context():
        return integrations.status_view(case.channel)


def test_a_request_is_delivered_once_with_message_context_and_link(app, people, case, fake):
    send_request(app, *people, message="Confirm the laptop swap", context="INC-7")
    assert dispatch(app) == ["sent"]
    (text,) = case.messages(fake)
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
    assert (status(app, case).state, status(app, case).error) == ("error", error)
    time_passes(app)
    assert dispatch(app) == ["sent"]
    assert len(case.messages(fake)) == 1
    assert status(app, case).state == "success"
    with app.app_context():
        kinds = [e.kind for e in db.session.scalars(
            select(Event).where(Event.kind.like("delivery.%")).order_by(Event.id))]
    assert kinds == ["delivery.retrying", "delivery.sent"]


def test_a_refusal_fails_at_once_with_the_providers_words(app, people, case, fake):
    send_request(app, *people)
    error = case.refuse(fake)
    assert dispatch(app) == ["failed"]
    (d,) = deliveries(app)
    assert (d.status, d.attempts, d.last_error) == ("failed", 1, error)
    time_passes(app)
    assert dispatch(app) == []
    assert case.messages(fake) == []


def test_disabling_the_channel_stops_queued_messages(app, people, case, fake):
    send_request(app, *people)
    with app.app_context():
        integrations.settings_row(case.channel).enabled = False
        db.session.commit()
    assert dispatch(app) == ["cancelled"]
    assert case.messages(fake) == []
    (d,) = deliveries(app)
    noun = integrations.INTEGRATIONS[case.channel].noun
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
