"""The incident service: keys, events as PagerDuty documents them, and every kind of answer."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from sendauth_dashboard.channels import pagerduty
from sendauth_dashboard.channels.pagerduty import EventsClient, IntegrationKeyError
from tests.support.helpers import TEST_KEY

from .fakes.pagerduty import Answer, validate


@pytest.mark.parametrize("raw", [
    TEST_KEY, f"  {TEST_KEY}\n", "R022XIJR9M266DX570EVE6EXP1AFBN6D", "0" * 32,
])
def test_well_formed_keys_are_accepted_trimmed_with_case_kept(raw):
    assert pagerduty.clean_integration_key(raw) == raw.strip()


@pytest.mark.parametrize("raw, message", [
    (TEST_KEY[:31], "must be 32 letters or digits; yours has 31 characters"),
    (TEST_KEY + "9", "yours has 33 characters"),
    (TEST_KEY[:31] + "-", "it contains '-'"),
    (TEST_KEY[:16] + " " + TEST_KEY[17:], "it contains a space"),
    ("é" + TEST_KEY[1:], "it contains 'é'"),
    (TEST_KEY[:31] + "\u200b", "it contains the character U+200B"),
    ("", "yours has 0 characters"),
])
def test_malformed_keys_are_refused_saying_what_is_wrong(raw, message):
    with pytest.raises(IntegrationKeyError, match=re.escape(message)) as info:
        pagerduty.clean_integration_key(raw)
    assert "Service → Integrations → Events API V2" in str(info.value)


class FakeTransaction:
    class Person:
        def __init__(self, name, email):
            self.name, self.email = name, email

    def __init__(self, message="Reset MFA", context="Ticket 7"):
        self.public_id = "tx_Abc123"
        self.requestor = self.Person("Hana Helpdesk", "hana@example.com")
        self.user = self.Person("Uma User", "uma@example.com")
        self.message = message
        self.context = context
        self.created_at = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
        self.expires_at = self.created_at + timedelta(minutes=5)


def build(transaction=None, severity="warning"):
    return pagerduty.transaction_trigger(
        transaction=transaction or FakeTransaction(), routing_key=TEST_KEY, severity=severity,
        link="https://sendauth.example.com/authenticate/tok", base_url="https://sendauth.example.com",
    )


def test_the_trigger_has_every_field_the_product_page_names():
    event = build()
    assert validate(event) == []
    assert event["routing_key"] == TEST_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "tx_Abc123"
    payload = event["payload"]
    assert payload["summary"] == "Authentication request from Hana Helpdesk"
    assert payload["source"] == "sendauth.example.com"
    assert payload["severity"] == "warning"
    assert payload["timestamp"] == "2026-11-26T12:00:00+00:00"
    details = payload["custom_details"]
    assert details["requestor"] == "Hana Helpdesk <hana@example.com>"
    assert details["user"] == "Uma User <uma@example.com>"
    assert details["transaction_id"] == "tx_Abc123"
    assert details["message"] == "Reset MFA"
    assert details["context"] == "Ticket 7"
    assert event["links"] == [{"href": "https://sendauth.example.com/authenticate/tok",
                               "text": "Authenticate as Uma User (verify or deny)"}]
    assert event["client"] == "SendAuth"
    assert event["client_url"] == "https://sendauth.example.com/transactions/tx_Abc123"


def test_the_fake_holds_events_to_pagerdutys_published_schema():
    event = build()
    event["payload"]["severity"] = "urgent"
    del event["event_action"]
    errors = validate(event)
    assert ("payload.severity: 'urgent' is not one of ['critical', 'warning', 'error', 'info']"
            in errors)
    assert "event: 'event_action' is a required property" in errors


def test_a_long_summary_is_cut_by_characters_to_1024():
    transaction = FakeTransaction()
    transaction.requestor.name = "Ω" * 2000
    summary = build(transaction)["payload"]["summary"]
    assert len(summary) == 1024
    assert summary.endswith("…")


def test_an_event_over_512_kb_gives_up_its_long_details_first():
    event = pagerduty.trigger_event(
        routing_key=TEST_KEY, severity="info", dedup_key="d", summary="s", source="h",
        custom_details={"message": "m" * 600_000, "context": "c" * 10},
    )
    assert pagerduty.encoded_size(event) <= pagerduty.EVENT_MAX_BYTES
    assert len(event["payload"]["custom_details"]["message"]) == 1000


def test_the_test_incident_is_labelled_as_a_test():
    event = pagerduty.test_trigger(routing_key=TEST_KEY, severity="info", sent_by="Ada",
                                   base_url="https://s.example", dedup_key="sendauth-test-1")
    assert validate(event) == []
    assert event["payload"]["summary"].startswith("[TEST]")
    assert event["payload"]["custom_details"]["test"] is True


@pytest.fixture
def client_for(fake_pagerduty):
    return EventsClient(fake_pagerduty.url, connect_timeout=5.0, read_timeout=5.0)


def test_202_is_accepted_with_the_dedup_key(fake_pagerduty, client_for):
    result = client_for.send(build())
    assert result.outcome == "accepted" and result.http_status == 202
    assert result.external_id == "tx_Abc123"
    assert len(fake_pagerduty.incidents) == 1


@pytest.mark.parametrize("answer, error", [
    (Answer.invalid_routing_key(), "HTTP 400: Invalid routing key"),
    (Answer.invalid_event("'payload.source' is missing or blank", "x"),
     "HTTP 400: 'payload.source' is missing or blank; x"),
    (Answer(400, {"message": "Event object is invalid"}), "HTTP 400: Event object is invalid"),
    (Answer(403, "<html>Forbidden</html>", content_type="text/html"), "HTTP 403: Forbidden"),
    (Answer(404, ""), "HTTP 404: Not Found"),
])
def test_4xx_answers_are_permanent_with_pagerdutys_own_words(fake_pagerduty, client_for,
                                                             answer, error):
    fake_pagerduty.answer_next(answer)
    result = client_for.send(build())
    assert result.outcome == "permanent"
    assert result.error == error


def test_a_real_invalid_event_is_refused_by_the_fake_with_its_errors(fake_pagerduty, client_for):
    event = build()
    event["payload"]["severity"] = "urgent"
    result = client_for.send(event)
    assert result.outcome == "permanent"
    assert "'payload.severity' is invalid" in result.error


@pytest.mark.parametrize("answer, status", [
    (Answer.rate_limited(), 429), (Answer.server_error(), 500), (Answer(503, ""), 503),
])
def test_429_and_5xx_are_retryable(fake_pagerduty, client_for, answer, status):
    fake_pagerduty.answer_next(answer)
    result = client_for.send(build())
    assert (result.outcome, result.http_status) == ("retryable", status)


def test_retry_after_is_read_in_seconds_or_as_a_date(fake_pagerduty, client_for):
    fake_pagerduty.answer_next(Answer.rate_limited(retry_after=30))
    assert client_for.send(build()).retry_after == 30
    later = (datetime.now(timezone.utc) + timedelta(seconds=90)).strftime(
        "%a, %d %b %Y %H:%M:%S GMT")
    fake_pagerduty.answer_next(Answer.rate_limited(retry_after=later))
    assert 80 < client_for.send(build()).retry_after <= 90


def test_a_hang_past_the_read_timeout_is_retryable(fake_pagerduty):
    impatient = EventsClient(fake_pagerduty.url, connect_timeout=5.0, read_timeout=0.5)
    fake_pagerduty.answer_next(Answer.hanging())
    result = impatient.send(build())
    assert result.outcome == "retryable"
    assert "did not answer within 0.5 s" in result.error
    fake_pagerduty.answer_normally()


def test_a_refused_connection_is_retryable(fake_pagerduty, client_for):
    fake_pagerduty.stop()
    result = client_for.send(build())
    assert result.outcome == "retryable"
    assert "Could not connect" in result.error

