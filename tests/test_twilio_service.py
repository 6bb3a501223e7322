"""SMS through Twilio: the 500-character message with the whole link, and every kind of answer."""
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendauth_dashboard.channels import sms
from sendauth_dashboard.channels.phone_numbers import clean_phone_number
from tests.support.helpers import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SENDER

from .fakes.twilio import Answer

LINK = "http://sendauth.test/authenticate/" + "t" * 43


def transaction(name="Hana Helpdesk", message="Please confirm your password reset",
                context="Ticket #4521"):
    return SimpleNamespace(requestor=SimpleNamespace(name=name), message=message, context=context)


def text_message(to="+14155550123", auth_token=TWILIO_AUTH_TOKEN, body="Hello"):
    return sms.TextMessage(TWILIO_ACCOUNT_SID, auth_token, TWILIO_SENDER, to, body)


@pytest.fixture
def client_for(fake_twilio):
    return sms.TwilioClient(fake_twilio.base_url, connect_timeout=5.0, read_timeout=5.0)


def test_a_short_request_keeps_everything():
    assert sms.request_sms(transaction(), LINK) == (
        "SendAuth: Hana Helpdesk asks you to authenticate.\n"
        "Message: Please confirm your password reset\n"
        "Context: Ticket #4521\n"
        f"Verify or deny: {LINK}")


def test_a_long_context_gives_way_before_the_message():
    text = sms.request_sms(transaction(message="m" * 200, context="c" * 1024), LINK)
    assert len(text) == 500
    assert "m" * 200 in text and "c…\n" in text
    assert text.endswith(f"Verify or deny: {LINK}")


@given(name=st.text(min_size=1, max_size=100), message=st.text(min_size=1, max_size=1024),
       context=st.text(max_size=1024))
def test_an_sms_is_at_most_500_characters_and_always_ends_with_the_whole_link(name, message,
                                                                              context):
    text = sms.request_sms(transaction(name, message, context), LINK)
    assert len(text) <= sms.SMS_MAX_CHARS
    assert text.endswith(f"\nVerify or deny: {LINK}")


def test_twilio_gets_the_form_fields_with_basic_auth_and_answers_with_a_message_sid(
        fake_twilio, client_for):
    result = client_for.send(text_message(body="Hello there"))
    assert result.outcome == "accepted" and result.http_status == 201
    assert result.external_id.startswith("SM")
    assert fake_twilio.messages == [{"To": "+14155550123", "From": TWILIO_SENDER,
                                     "Body": "Hello there"}]


def test_a_wrong_auth_token_is_permanent_with_twilios_words(client_for):
    result = client_for.send(text_message(auth_token="0" * 32))
    assert result.outcome == "permanent"
    assert result.error == ("HTTP 401: Twilio error 20003: Authenticate (Your AccountSid or "
                            "AuthToken was incorrect.)")


def test_an_invalid_number_is_permanent_with_twilios_words(client_for):
    result = client_for.send(text_message(to="+1555"))
    assert (result.outcome, result.http_status) == ("permanent", 400)
    assert result.error == ("HTTP 400: Twilio error 21211: The 'To' number +1555 is not a valid "
                            "phone number.")


@pytest.mark.parametrize("answer, status", [
    (Answer.too_many_requests(), 429), (Answer.server_error(), 500),
    (Answer(503, "Service Unavailable", content_type="text/plain"), 503),
])
def test_429_and_5xx_are_retryable(fake_twilio, client_for, answer, status):
    fake_twilio.answer_next(answer)
    result = client_for.send(text_message())
    assert (result.outcome, result.http_status) == ("retryable", status)


def test_a_429_says_when_to_retry(fake_twilio, client_for):
    fake_twilio.answer_next(Answer.too_many_requests(retry_after=30))
    result = client_for.send(text_message())
    assert result.retry_after == 30
    assert result.error == "HTTP 429: Twilio error 20429: Too Many Requests"


def test_a_hang_past_the_read_timeout_is_retryable(fake_twilio):
    impatient = sms.TwilioClient(fake_twilio.base_url, connect_timeout=5.0, read_timeout=0.5)
    fake_twilio.answer_next(Answer.hanging())
    result = impatient.send(text_message())
    assert result.outcome == "retryable"
    assert result.error == "Twilio did not answer within 0.5 s (timeout)"
    fake_twilio.answer_normally()


def test_a_refused_connection_is_retryable(fake_twilio, client_for):
    fake_twilio.stop()
    result = client_for.send(text_message())
    assert result.outcome == "retryable" and "Could not connect to Twilio" in result.error


@pytest.mark.parametrize("raw, cleaned", [
    (f"  {TWILIO_ACCOUNT_SID} ", TWILIO_ACCOUNT_SID),
    ("AC" + "0123456789ABCDEF" * 2, TWILIO_ACCOUNT_SID),
    ("", None),
])
def test_account_sids_are_trimmed_with_lower_case_hex(raw, cleaned):
    assert sms.clean_account_sid(raw) == cleaned


@pytest.mark.parametrize("raw, problem", [
    ("SK" + "0" * 32, "yours starts with SK, which is another kind of Twilio SID"),
    ("XY" + "0" * 32, "yours does not start with AC"),
    ("AC" + "0" * 31, "yours has 33 characters"),
    ("AC" + "g" * 32, "characters other than 0-9 and a-f after the AC"),
])
def test_a_malformed_account_sid_says_what_is_wrong(raw, problem):
    with pytest.raises(ValueError) as info:
        sms.clean_account_sid(raw)
    assert problem in str(info.value)
    assert str(info.value).startswith("The Account SID is AC followed by 32 hexadecimal digits")


@pytest.mark.parametrize("raw, problem", [
    ("5eed" * 7, "yours has 28 characters"), ("x" * 32, "characters other than 0-9 and a-f"),
])
def test_a_malformed_auth_token_says_what_is_wrong_without_repeating_it(raw, problem):
    with pytest.raises(ValueError) as info:
        sms.clean_auth_token(raw)
    assert problem in str(info.value) and raw not in str(info.value)


@pytest.mark.parametrize("raw, cleaned", [
    ("+14155550123", "+14155550123"), (" +1 (415) 555-0123 ", "+14155550123"),
    ("+44 20 7183 8750", "+442071838750"), ("", None),
])
def test_phone_numbers_are_kept_in_e164(raw, cleaned):
    assert clean_phone_number(raw) == cleaned


@pytest.mark.parametrize("raw, message", [
    ("415 555 0123", "in international format: + and the country code"),
    ("0044 20 7183 8750", "with + instead of 00 in front"),
    ("+1 415 CALL NOW", "only digits after the +"),
    ("+0 415 555 0123", "the country code, which never starts with 0"),
    ("+1234", "7 to 15 digits after the +; this one has 4"),
    ("+1234567890123456", "7 to 15 digits after the +; this one has 16"),
])
def test_a_number_not_in_e164_says_how_to_write_it(raw, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        clean_phone_number(raw)
