"""The SMS settings page: what is special to Twilio.

What every channel's page promises is in every_channel/test_settings_page.py.
"""
import pytest

from sendauth_dashboard import channels
from tests.support.helpers import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SENDER

from .fakes.twilio import Answer


@pytest.fixture
def app_config(fake_twilio):
    return {"TWILIO_API_URL": fake_twilio.base_url}


def form(**fields):
    values = {"account_sid": TWILIO_ACCOUNT_SID, "auth_token": TWILIO_AUTH_TOKEN,
              "sender": TWILIO_SENDER}
    values.update(fields)
    return values


def stored(app):
    with app.app_context():
        s = channels.channel("sms").settings_row()
        return s.enabled, s.account_sid, s.auth_token_ciphertext is not None, s.sender


def test_every_malformed_field_is_shown_beside_it_at_once_and_nothing_is_saved(app, as_admin):
    response = as_admin.post("/settings/sms", form(
        enabled="y", account_sid="SK" + "0" * 32, auth_token="short", sender="415 555 0123"))
    assert response.status_code == 400
    for field_id in ("account_sid", "auth_token", "sender"):
        assert f'id="{field_id}-errors"' in response.text
    assert "The Account SID is AC followed by 32 hexadecimal digits" in response.text
    assert "The auth token is 32 hexadecimal digits (0-9, a-f); yours has 5 characters" \
        in response.text
    assert "Write the sender number in international format" in response.text
    assert stored(app) == (False, None, False, None)


def test_enabling_with_nothing_saved_lists_what_is_needed(app, as_admin):
    response = as_admin.post("/settings/sms", {"enabled": "y"})
    assert response.status_code == 400
    assert ("Enter the Account SID, paste the auth token and enter the sender number before "
            "enabling SMS: the Twilio Console shows them under Account Info and Phone Numbers."
            in response.text)


def test_the_sender_number_is_stored_in_e164(app, as_admin):
    as_admin.post("/settings/sms", form(enabled="y", sender="+1 (500) 555-0006"))
    assert stored(app) == (True, TWILIO_ACCOUNT_SID, True, "+15005550006")


def test_the_test_sms_needs_the_admins_own_phone_number(client, as_admin, fake_twilio):
    as_admin.post("/settings/sms", form())
    assert "which you have not added yet" in client.get("/settings/sms").text
    as_admin.post("/settings/sms/test")
    html = client.get("/settings/sms").text
    assert ("The test goes to you: add your phone number under Messaging preferences first."
            in html)
    assert fake_twilio.received == []
    assert 'data-state="never"' in html


def test_an_accepted_test_names_twilios_message_sid(app, client, auth, make_user, fake_twilio):
    auth.login(make_user("admin", phone="+14155550123"))
    auth.post("/settings/sms", form())
    auth.post("/settings/sms/test")
    (message,) = fake_twilio.messages
    assert message["To"] == "+14155550123" and message["Body"].startswith("[TEST] SMS from")
    assert "Twilio accepted the test SMS (message SID SM" in client.get("/settings/sms").text


def test_an_accepted_test_says_what_it_cost_in_segments(client, auth, make_user, fake_twilio):
    auth.login(make_user("admin", phone="+14155550123", name="Zoë “Z” O’Brien Jr."))
    auth.post("/settings/sms", form())
    auth.post("/settings/sms/test")
    (message,) = fake_twilio.messages
    assert "Zoe \"Z\" O'Brien Jr. from the SMS settings" in message["Body"]
    assert "; 1 segment, GSM-7). Check that it arrived at +14155550123." in client.get(
        "/settings/sms").text


def test_a_refused_test_quotes_twilio_without_a_double_full_stop(client, auth, make_user,
                                                                  fake_twilio):
    auth.login(make_user("admin", phone="+14155550123"))
    auth.post("/settings/sms", form())
    fake_twilio.answer_next(Answer(400, {"code": 21610, "status": 400,
                                         "message": "Attempt to send to unsubscribed recipient."}))
    auth.post("/settings/sms/test")
    assert ("Twilio refused the test SMS: HTTP 400: Twilio error 21610: Attempt to send to "
            "unsubscribed recipient. Check the Account SID") in client.get("/settings/sms").text
