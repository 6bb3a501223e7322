"""PagerDuty, email, SMS and Slack, described once: every test in this folder runs once per
channel.

Fixtures: ``case`` (the channel's description), ``fake`` (its fake provider, started) and
``app_config`` (the app pointed at that fake).
"""
import json
from dataclasses import dataclass

import pytest

from tests.support.helpers import (
    OTHER_SLACK_BOT_TOKEN,
    OTHER_TEST_KEY,
    OTHER_TWILIO_AUTH_TOKEN,
    SLACK_BOT_TOKEN,
    SMTP_PASSWORD,
    TEST_KEY,
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
    TWILIO_SENDER,
    configure_email,
    configure_pagerduty,
    configure_slack,
    configure_sms,
)

from ..fakes.pagerduty import Answer as PagerDutyAnswer
from ..fakes.slack import Answer as SlackAnswer
from ..fakes.twilio import Answer as TwilioAnswer


@dataclass
class ChannelCase:
    channel: str
    # The fixture of the fake provider, and the app's configuration pointing at it.
    fake: str
    app_config: callable
    # Set up and enable the channel as an admin would; the settings page's fields for that.
    configure: callable
    settings: callable
    secret_field: str
    secret: str
    other_secret: str
    remove_path: str
    # What a person needs in their messaging preferences to be reached, and where that is.
    contact: dict
    reaches: callable
    # Make the fake refuse the next send for good, quoting ``text``; the error that results.
    refuse: callable
    refused_error: callable
    # Make the fake fail the next send for now; returns the error that results.
    fail_temporarily: callable
    # What the fake delivered, as (recipient, text), oldest first.
    sent: callable

    def __str__(self):
        return self.channel

    def prefs(self):
        """Messaging preferences in which this channel is the only one on."""
        return {"notify_email": False, f"notify_{self.channel}": True, **self.contact}


def _pagerduty_fail_temporarily(fake):
    fake.answer_next(PagerDutyAnswer.server_error())
    return "HTTP 500: Internal Server Error"


def _email_fail_temporarily(fake):
    fake.refuse_next_message("451 4.3.0 Mailbox busy, try again later")
    return "SMTP 451: 4.3.0 Mailbox busy, try again later"


def _sms_fail_temporarily(fake):
    fake.answer_next(TwilioAnswer.too_many_requests())
    return ("HTTP 429: Twilio error 20429: Too Many Requests More: "
            "https://www.twilio.com/docs/errors/20429")


def _slack_fail_temporarily(fake):
    fake.answer_next(SlackAnswer.rate_limited(retry_after=1))
    return "HTTP 429: Slack error ratelimited (Slack asks to slow down)"


PHONE = "+14155550123"
MEMBER_ID = "U024BE7LH"

CASES = [
    ChannelCase(
        channel="pagerduty", fake="fake_pagerduty",
        app_config=lambda fake: {"PAGERDUTY_EVENTS_URL": fake.url},
        configure=lambda app, fake: configure_pagerduty(app),
        settings=lambda fake: {"severity": "critical"},
        secret_field="integration_key", secret=TEST_KEY, other_secret=OTHER_TEST_KEY,
        remove_path="remove-key",
        # An incident goes to the service whose integration key it carries, whoever is asked.
        contact={}, reaches=lambda user: TEST_KEY,
        refuse=lambda fake, text: fake.answer_next(PagerDutyAnswer.invalid_event(text)),
        refused_error=lambda text: f"HTTP 400: {text}",
        fail_temporarily=_pagerduty_fail_temporarily,
        sent=lambda fake: [(event["routing_key"], json.dumps(event, ensure_ascii=False))
                           for event in fake.accepted],
    ),
    ChannelCase(
        channel="email", fake="fake_smtp", app_config=lambda fake: {},
        configure=lambda app, fake: configure_email(app, fake.port),
        settings=lambda fake: {"host": "127.0.0.1", "port": str(fake.port), "tls_mode": "none",
                               "username": "", "from_address": "sendauth@example.com"},
        secret_field="password", secret=SMTP_PASSWORD, other_secret="An0ther-sm7p-pa55word",
        remove_path="remove-password",
        contact={}, reaches=lambda user: user.email,
        refuse=lambda fake, text: fake.refuse_next_message(f"554 5.7.1 {text}"),
        refused_error=lambda text: f"SMTP 554: 5.7.1 {text}",
        fail_temporarily=_email_fail_temporarily,
        sent=lambda fake: [(r.rcpt_tos[0], r.body()) for r in fake.received],
    ),
    ChannelCase(
        channel="sms", fake="fake_twilio",
        app_config=lambda fake: {"TWILIO_API_URL": fake.base_url},
        configure=lambda app, fake: configure_sms(app),
        settings=lambda fake: {"account_sid": TWILIO_ACCOUNT_SID, "sender": TWILIO_SENDER},
        secret_field="auth_token", secret=TWILIO_AUTH_TOKEN, other_secret=OTHER_TWILIO_AUTH_TOKEN,
        remove_path="remove-token",
        contact={"phone": PHONE}, reaches=lambda user: PHONE,
        refuse=lambda fake, text: fake.answer_next(
            TwilioAnswer(400, {"code": 21610, "message": text, "status": 400})),
        refused_error=lambda text: f"HTTP 400: Twilio error 21610: {text}",
        fail_temporarily=_sms_fail_temporarily,
        sent=lambda fake: [(m["To"], m["Body"]) for m in fake.messages],
    ),
    ChannelCase(
        channel="slack", fake="fake_slack",
        app_config=lambda fake: {"SLACK_API_URL": fake.url},
        configure=lambda app, fake: configure_slack(app), settings=lambda fake: {},
        secret_field="bot_token", secret=SLACK_BOT_TOKEN, other_secret=OTHER_SLACK_BOT_TOKEN,
        remove_path="remove-token",
        contact={"slack_member_id": MEMBER_ID}, reaches=lambda user: MEMBER_ID,
        refuse=lambda fake, text: fake.answer_next(SlackAnswer.unlisted_error(text)),
        refused_error=lambda text: f"Slack error {text}",
        fail_temporarily=_slack_fail_temporarily,
        sent=lambda fake: [(m["channel"], fake.shown(m)) for m in fake.messages],
    ),
]


@pytest.fixture(params=CASES, ids=str)
def case(request):
    return request.param


@pytest.fixture
def fake(case, request):
    return request.getfixturevalue(case.fake)


@pytest.fixture
def app_config(case, fake):
    # A retry comes due only when a test says time passes (tests.test_delivery.time_passes).
    return {"DELIVERY_BACKOFF_BASE_SECONDS": 120.0, **case.app_config(fake)}
