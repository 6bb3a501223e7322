"""Messaging preferences: every user chooses their own channels and says how to reach them."""
import json

import pytest
from sqlalchemy import select

from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import Event, User
from tests.support.helpers import configure_email, configure_sms


@pytest.fixture
def member(make_user):
    return make_user("member", name="Uma User")


@pytest.fixture
def as_member(auth, member):
    auth.login(member)
    return auth


def save(as_member, user, **fields):
    """Post the form as a browser does: ticked boxes as "y", text fields even when empty, and
    a fresh proof with the user's passkey (its page's script asks for one on saving)."""
    return as_member.post("/profile/messaging", {**fields, "proof": proof(as_member, user)})


def proof(as_member, user):
    csrf = as_member.csrf_token("/profile/messaging")
    options = as_member.client.post("/profile/proof-options", headers={"X-CSRFToken": csrf})
    assert options.status_code == 200, options.text
    return json.dumps(user.authenticator.get(options.get_json()))


def prefs(app, user):
    with app.app_context():
        u = db.session.get(User, user.id)
        return {"pagerduty": u.notify_pagerduty, "email": u.notify_email, "sms": u.notify_sms,
                "slack": u.notify_slack, "phone": u.phone, "slack_member_id": u.slack_member_id}


def audit(app):
    with app.app_context():
        return [{"changes": e.data["changes"]} for e in db.session.scalars(
            select(Event).where(Event.kind == "profile.messaging_changed").order_by(Event.id))]


@pytest.mark.usefixtures("every_channel_offered")
def test_a_new_user_gets_requests_by_email(app, client, as_member, member):
    html = client.get("/profile/messaging").text
    assert 'checked id="email" name="email"' in html
    assert 'id="sms" name="sms" type="checkbox" value="y">' in html
    assert prefs(app, member)["email"] is True


@pytest.mark.usefixtures("every_channel_offered")
def test_a_user_turns_on_sms_with_their_number_in_any_common_format(app, client, as_member,
                                                                    member):
    response = save(as_member, member, email="y", sms="y", phone="+1 (415) 555-0123")
    assert response.status_code == 302
    assert prefs(app, member)["sms"] is True and prefs(app, member)["phone"] == "+14155550123"
    assert audit(app) == [{"changes": ["SMS on", "phone number added"]}]
    assert "Your messaging preferences are saved: SMS on; phone number added." in \
        client.get("/profile/messaging").text


@pytest.mark.usefixtures("every_channel_offered")
def test_turning_on_sms_and_slack_without_contact_details_says_what_each_needs(app, as_member,
                                                                               member):
    response = save(as_member, member, email="y", sms="y", slack="y")
    assert response.status_code == 400
    assert 'id="phone-errors"' in response.text and 'id="slack_member_id-errors"' in response.text
    assert "Enter your phone number to get requests through SMS, or turn SMS off." \
        in response.text
    assert "Enter your Slack member id to get requests through Slack, or turn Slack off." \
        in response.text
    assert prefs(app, member)["sms"] is False and audit(app) == []


@pytest.mark.usefixtures("every_channel_offered")
@pytest.mark.parametrize("fields, field_id, message", [
    ({"phone": "415 555 0123"}, "phone", "Write the phone number in international format"),
    ({"phone": "+1415CALLNOW"}, "phone", "A phone number has only digits after the +"),
    ({"slack_member_id": "@uma"}, "slack_member_id",
     "A Slack member id is U or W followed by capital letters and digits, like U024BE7LH"),
])
def test_a_malformed_contact_detail_is_refused_beside_its_field(app, as_member, member, fields,
                                                                field_id, message):
    response = save(as_member, member, email="y", **fields)
    assert response.status_code == 400
    assert f'id="{field_id}-errors"' in response.text and message in response.text
    assert prefs(app, member)["phone"] is None and prefs(app, member)["slack_member_id"] is None


@pytest.mark.usefixtures("every_channel_offered")
def test_slack_member_ids_are_kept_in_capitals(app, as_member, member):
    save(as_member, member, slack="y", slack_member_id=" u024be7lh ")
    assert prefs(app, member)["slack_member_id"] == "U024BE7LH"
    assert prefs(app, member)["email"] is False


@pytest.mark.usefixtures("every_channel_offered")
def test_turning_every_channel_off_is_refused(app, as_member, member):
    response = save(as_member, member)
    assert response.status_code == 400
    assert 'id="channels-errors"' in response.text
    assert "Keep at least one channel on" in response.text
    assert prefs(app, member)["email"] is True


@pytest.mark.usefixtures("every_channel_offered")
def test_removing_the_number_while_sms_is_on_is_refused(app, make_user, auth):
    user = make_user("member", notify_sms=True, phone="+14155550123")
    auth.login(user)
    response = save(auth, user, email="y", sms="y", phone="")
    assert response.status_code == 400
    assert "Enter your phone number to get requests through SMS" in response.text
    assert prefs(app, user)["phone"] == "+14155550123"


@pytest.mark.usefixtures("every_channel_offered")
def test_turning_sms_off_and_removing_the_number_is_recorded_in_words(app, make_user, auth):
    user = make_user("member", notify_sms=True, phone="+14155550123")
    auth.login(user)
    assert save(auth, user, email="y", phone="").status_code == 302
    assert audit(app) == [{"changes": ["SMS off", "phone number removed"]}]


def test_a_member_is_offered_only_the_channels_set_up_in_their_own_words(app, client, auth,
                                                                         make_user):
    configure_sms(app)
    user = make_user("member", notify_slack=True, slack_member_id="U024BE7LH")
    auth.login(user)
    html = client.get("/profile/messaging").text
    assert 'name="sms"' in html and 'name="phone"' in html
    for hidden in ('name="email"', 'name="pagerduty"', 'name="slack"', "slack_member_id"):
        assert hidden not in html
    assert "Your organisation has not set up PagerDuty, Email and Slack." in html
    for admin_words in ("Account SID", "integration is disabled", "Settings → Channels"):
        assert admin_words not in html
    assert "ask your help desk about the others" in html
    assert save(auth, user, sms="y", phone="+14155550123").status_code == 302
    assert prefs(app, user) == {"pagerduty": False, "email": True, "sms": True, "slack": True,
                                "phone": "+14155550123", "slack_member_id": "U024BE7LH"}, \
        "what a member is not offered stays as it was"


def test_a_member_of_an_organisation_with_no_channel_set_up_is_told_so(client, as_member):
    html = client.get("/profile/messaging").text
    assert "Your organisation has not set up a channel yet" in html
    assert "Unavailable right now" not in html


def test_an_admin_is_pointed_to_the_settings_page_that_fixes_it(client, as_admin):
    html = client.get("/profile/messaging").text
    assert 'Set it up under <a href="/settings/slack">Settings → Channels → Slack</a>' in html


def test_the_page_says_which_channels_reach_the_user_now(app, client, make_user, auth,
                                                         fake_smtp):
    configure_email(app, fake_smtp.port)
    configure_sms(app)
    auth.login(make_user("member", notify_sms=True, phone="+14155550123"))
    html = client.get("/profile/messaging").text
    assert "Requests reach you through: <strong>Email, SMS</strong>." in html
    assert "Unavailable right now: the email" not in html


@pytest.mark.usefixtures("every_channel_offered")
def test_a_user_changes_only_their_own_preferences(app, as_member, member, make_user):
    other = make_user("member")
    save(as_member, member, email="y", sms="y", phone="+14155550123")
    assert prefs(app, other) == {"pagerduty": False, "email": True, "sms": False,
                                 "slack": False, "phone": None, "slack_member_id": None}
