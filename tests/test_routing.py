"""The one routing rule: every channel the user has on that the organisation has set up and
enabled, and a refusal that says why when there is none."""
import pytest
from sqlalchemy import func, select

from sendauth_dashboard import channels
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Delivery, Event, Transaction, User
from sendauth_dashboard.services.requests import routing, transactions
from tests.support.helpers import (
    configure_email,
    configure_pagerduty,
    configure_slack,
    configure_sms,
    send_request,
)

EVERYTHING_ON = {"notify_pagerduty": True, "notify_email": True, "notify_sms": True,
                 "notify_slack": True, "phone": "+14155550123", "slack_member_id": "U024BE7LH"}


def set_up_every_channel(app, port=2525):
    configure_pagerduty(app)
    configure_email(app, port)
    configure_sms(app)
    configure_slack(app)


def route_of(app, user):
    with app.app_context():
        return routing.route(db.session.get(User, user.id))


def disable(app, channel):
    with app.app_context():
        channels.channel(channel).settings_row().enabled = False
        db.session.commit()


def test_every_channel_the_user_has_on_and_the_organisation_has_enabled_is_used(app, make_user):
    set_up_every_channel(app)
    route = route_of(app, make_user("member", **EVERYTHING_ON))
    assert route.channels == ("pagerduty", "email", "sms", "slack")
    assert route.skipped == {}


def test_channels_the_user_has_off_are_not_used_even_when_set_up(app, make_user):
    set_up_every_channel(app)
    route = route_of(app, make_user("member", notify_email=False, notify_sms=True,
                                    phone="+14155550123"))
    assert route.channels == ("sms",)
    assert route.skipped["email"] == "off in their messaging preferences"


def test_with_pagerduty_disabled_a_pagerduty_user_is_reached_by_email_only(app, make_user):
    set_up_every_channel(app)
    disable(app, "pagerduty")
    route = route_of(app, make_user("member", notify_pagerduty=True, notify_email=True))
    assert route.channels == ("email",)
    assert route.skipped["pagerduty"] == "the PagerDuty integration is disabled"


def test_with_pagerduty_never_configured_a_pagerduty_user_gets_their_other_channels(app,
                                                                                    make_user):
    configure_email(app, 2525)
    configure_slack(app)
    route = route_of(app, make_user("member", notify_pagerduty=True, notify_email=True,
                                    notify_slack=True, slack_member_id="U024BE7LH"))
    assert route.channels == ("email", "slack")
    assert route.skipped["pagerduty"] == "the PagerDuty integration has no integration key"


@pytest.mark.parametrize("channel", ["email", "sms", "slack"])
def test_a_disabled_channel_is_skipped_with_why_and_the_others_still_used(app, make_user,
                                                                          channel):
    set_up_every_channel(app)
    disable(app, channel)
    route = route_of(app, make_user("member", **EVERYTHING_ON))
    assert channel not in route.channels and len(route.channels) == 3
    noun = channels.REGISTRY[channel].noun
    assert route.skipped == {channel: f"the {noun} integration is disabled"}


def test_a_channel_without_the_users_contact_detail_is_skipped_with_why(app, make_user):
    set_up_every_channel(app)
    route = route_of(app, make_user("member", **{**EVERYTHING_ON, "slack_member_id": None}))
    assert "slack" not in route.channels
    assert route.skipped["slack"] == "no Slack member id in their messaging preferences"


def test_a_user_no_channel_can_reach_is_refused_with_every_reason_and_nothing_is_written(
        app, make_user):
    configure_pagerduty(app, enabled=False)
    configure_sms(app)
    requestor = make_user("requestor")
    user = make_user("member", name="Nina Nowhere", notify_pagerduty=True, notify_email=False,
                     notify_sms=True)
    with pytest.raises(transactions.TransactionError) as info:
        send_request(app, requestor, user)
    assert str(info.value) == (
        "No channel can reach Nina Nowhere. PagerDuty: the PagerDuty integration is disabled; "
        "Email: off in their messaging preferences; "
        "SMS: no phone number in their messaging preferences; "
        "Slack: off in their messaging preferences.")
    assert info.value.field == "user"
    with app.app_context():
        assert db.session.scalar(select(func.count(Transaction.id))) == 0
        assert db.session.scalar(select(func.count(Delivery.id))) == 0
        assert db.session.scalar(select(func.count(Event.id))
                                 .where(Event.kind.like("transaction.%"))) == 0


def test_a_request_queues_one_delivery_per_routed_channel(app, make_user):
    set_up_every_channel(app)
    send_request(app, make_user("requestor"), make_user("member", **EVERYTHING_ON))
    with app.app_context():
        channels = db.session.scalars(select(Delivery.channel).order_by(Delivery.id)).all()
        created = db.session.scalar(select(Event).where(Event.kind == "transaction.created"))
    assert channels == ["pagerduty", "email", "sms", "slack"]
    assert created.data["channels"] == channels
