"""SMS through Twilio: a message of at most 4 segments with the whole link, and every answer."""
from types import SimpleNamespace

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from sendauth_dashboard.channels import sms
from sendauth_dashboard.channels.phone_numbers import clean_phone_number
from sendauth_dashboard.channels.sms_text import Segments, segments
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
    assert segments(text) == Segments("GSM-7", 4) and len(text) == 4 * 153
    assert "m" * 200 in text and "c...\n" in text
    assert text.endswith(f"Verify or deny: {LINK}")


def test_a_cut_sms_stays_gsm7_and_costs_4_segments_not_8():
    # 500 ASCII characters cut with "…" went out as UCS-2: 8 segments instead of 4.
    text = sms.request_sms(transaction(message="m" * 1000), LINK)
    assert "…" not in text and text.count("...") == 1
    assert segments(text) == Segments("GSM-7", 4)


@pytest.mark.parametrize("name, shown", [
    ("Zoë O’Brien", "Zoe O'Brien"), ("Jean–Luc “JL” Picard", 'Jean-Luc "JL" Picard'),
    ("Ana\u00a0Lima…", "Ana Lima..."), ("Renée Dvořák", "Renée Dvorak"),
])
def test_typographic_characters_in_a_name_do_not_make_every_sms_ucs2(name, shown):
    text = sms.request_sms(transaction(name=name), LINK)
    assert text.startswith(f"SendAuth: {shown} asks")
    assert segments(text).encoding == "GSM-7"


def test_a_name_with_no_gsm7_twin_stays_as_written_and_the_sms_still_fits():
    text = sms.request_sms(transaction(name="Łukasz 王", message="m" * 1000), LINK)
    assert text.startswith("SendAuth: Łukasz 王 asks")
    assert segments(text) == Segments("UCS-2", 4)
    assert text.endswith(f"\nVerify or deny: {LINK}")


@pytest.mark.parametrize("text, expected", [
    ("a" * 160, Segments("GSM-7", 1)), ("a" * 161, Segments("GSM-7", 2)),
    ("a" * 306, Segments("GSM-7", 2)), ("a" * 307, Segments("GSM-7", 3)),
    ("€" * 80, Segments("GSM-7", 1)), ("€" * 81, Segments("GSM-7", 2)),
    # An escaped character is never split between segments: 152 + 2 + 152 is 3 segments.
    ("a" * 152 + "€" + "a" * 151, Segments("GSM-7", 2)),
    ("a" * 152 + "€" + "a" * 152, Segments("GSM-7", 3)),
    ("ł" * 70, Segments("UCS-2", 1)), ("ł" * 71, Segments("UCS-2", 2)),
    ("👍" * 35, Segments("UCS-2", 1)), ("👍" * 36, Segments("UCS-2", 2)),
    ("a" * 499 + "…", Segments("UCS-2", 8)),
])
def test_segments_are_counted_as_twilio_counts_them(text, expected):
    assert segments(text) == expected


@given(name=st.text(min_size=1, max_size=100), message=st.text(min_size=1, max_size=1024),
       context=st.text(max_size=1024))
def test_an_sms_costs_at_most_4_segments_and_always_ends_with_the_whole_link(name, message,
                                                                            context):
    text = sms.request_sms(transaction(name, message, context), LINK)
    assert segments(text).count <= sms.SMS_MAX_SEGMENTS
    assert text.endswith(f"\nVerify or deny: {LINK}")


def test_the_test_sms_ends_with_one_full_stop():
    text = sms.test_sms(SimpleNamespace(name="Ada Admin Jr."))
    assert text.endswith("anything.") and ".." not in text


def test_twilio_gets_the_form_fields_with_basic_auth_and_answers_with_a_message_sid(
        fake_twilio, client_for):
    result = client_for.send(text_message(body="Hello there"))
    assert result.outcome == "accepted" and result.http_status == 201
    assert result.external_id.startswith("SM") and result.note == "1 segment, GSM-7"
    assert fake_twilio.messages == [{"To": "+14155550123", "From": TWILIO_SENDER,
                                     "Body": "Hello there"}]
    assert fake_twilio.spec_violations == []


@pytest.mark.parametrize("body, segments_", [
    ("Hello there", "1 segment, GSM-7"), ("m" * 400, "3 segments, GSM-7"),
    ("Łukasz " * 20, "3 segments, UCS-2"),
])
def test_the_result_carries_twilios_segment_count(client_for, body, segments_):
    assert client_for.send(text_message(body=body)).note == segments_


def test_a_request_sms_holds_to_twilios_spec_and_costs_what_we_count(fake_twilio, client_for):
    body = sms.request_sms(transaction(name="Zoë “Z” O’Brien", message="m" * 700), LINK)
    assert client_for.send(text_message(body=body)).note == "4 segments, GSM-7"
    assert fake_twilio.spec_violations == []


@pytest.mark.parametrize("form, problem", [
    ({"To": "+14155550123", "From": TWILIO_SENDER, "Body": "Hi", "SmartEncoded": "yes"},
     "SmartEncoded: 'yes' is not of type 'boolean'"),
    ({"To": "+14155550123", "From": TWILIO_SENDER, "Text": "Hi"}, "needs one of body"),
    ({"From": TWILIO_SENDER, "Body": "Hi"}, "'To' is a required property"),
    ({"To": "+14155550123", "Body": "Hi"}, "needs one of from, messaging_service_sid"),
])
def test_the_fake_refuses_a_request_that_breaks_twilios_spec(fake_twilio, form, problem):
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json"
    response = requests.post(url, data=form, auth=(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN),
                             timeout=5)
    assert (response.status_code, response.json()["code"]) == (400, 20001)
    (violation,) = fake_twilio.spec_violations
    assert any(problem in p for p in violation)
    fake_twilio.spec_violations.clear()  # broken on purpose


def test_the_fake_refuses_an_account_sid_the_spec_does_not_allow(fake_twilio):
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/AC123/Messages.json"
    requests.post(url, data={"To": "+14155550123", "From": TWILIO_SENDER, "Body": "Hi"},
                  auth=("AC123", TWILIO_AUTH_TOKEN), timeout=5)
    (violation,) = fake_twilio.spec_violations
    assert any(p.startswith("AccountSid: ") for p in violation)
    fake_twilio.spec_violations.clear()  # broken on purpose


def test_a_wrong_auth_token_is_permanent_with_twilios_words(client_for):
    result = client_for.send(text_message(auth_token="0" * 32))
    assert result.outcome == "permanent"
    assert result.error == ("HTTP 401: Twilio error 20003: Authenticate (Your AccountSid or "
                            "AuthToken was incorrect.) More: https://www.twilio.com/docs/errors/"
                            "20003")


def test_an_invalid_number_is_permanent_with_twilios_words(client_for):
    result = client_for.send(text_message(to="+1555"))
    assert (result.outcome, result.http_status) == ("permanent", 400)
    assert result.error == ("HTTP 400: Twilio error 21211: The 'To' number +1555 is not a valid "
                            "phone number. More: https://www.twilio.com/docs/errors/21211")


def test_twilios_newer_error_body_with_details_is_read(fake_twilio, client_for):
    fake_twilio.answer_next(Answer(400, {
        "code": 21610, "message": "Attempt to send to unsubscribed recipient",
        "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400,
        "details": {"recipient": "+14155550123", "reason": "replied STOP"}}))
    result = client_for.send(text_message())
    assert result.error == ("HTTP 400: Twilio error 21610: Attempt to send to unsubscribed "
                            "recipient (recipient: +14155550123; reason: replied STOP) More: "
                            "https://www.twilio.com/docs/errors/21610")


@pytest.mark.parametrize("answer, status", [
    (Answer.too_many_requests(), 429), (Answer.server_error(), 500),
    (Answer(503, "Service Unavailable", content_type="text/plain"), 503),
    (Answer.request_timeout(), 408), (Answer.gateway_page(), 502),
])
def test_408_429_and_5xx_are_retryable(fake_twilio, client_for, answer, status):
    fake_twilio.answer_next(answer)
    result = client_for.send(text_message())
    assert (result.outcome, result.http_status) == ("retryable", status)


def test_a_gateways_html_page_is_named_by_its_status_not_quoted(fake_twilio, client_for):
    fake_twilio.answer_next(Answer.gateway_page())
    assert client_for.send(text_message()).error == "HTTP 502: Bad Gateway"


def test_a_429_says_when_to_retry(fake_twilio, client_for):
    fake_twilio.answer_next(Answer.too_many_requests(retry_after=30))
    result = client_for.send(text_message())
    assert result.retry_after == 30
    assert result.error == ("HTTP 429: Twilio error 20429: Too Many Requests More: "
                            "https://www.twilio.com/docs/errors/20429")


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
