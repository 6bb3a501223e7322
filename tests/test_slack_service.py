"""Slack direct messages: the text, the bot token, and Slack's answers (most of them HTTP 200)."""
from types import SimpleNamespace

import pytest

from sendauth_dashboard.channels import slack
from tests.support.helpers import SLACK_BOT_TOKEN

from .fakes.http import Answer as HttpAnswer
from .fakes.slack import Answer

LINK = "http://sendauth.test/authenticate/tok3n"


def transaction(message="Please confirm your password reset", context="Ticket #4521"):
    return SimpleNamespace(requestor=SimpleNamespace(name="Hana Helpdesk"), message=message,
                           context=context)


def dm(member_id="U024BE7LH", token=SLACK_BOT_TOKEN, text="Hello"):
    return slack.DirectMessage(token, member_id, text)


@pytest.fixture
def client_for(fake_slack):
    return slack.SlackClient(fake_slack.url, connect_timeout=5.0, read_timeout=5.0)


def test_the_message_names_the_requestor_and_carries_message_context_and_link():
    assert slack.request_text(transaction(), LINK) == (
        "*Authentication request from Hana Helpdesk*\n"
        "Message: Please confirm your password reset\n"
        "Context: Ticket #4521\n"
        f"Verify or deny: {LINK}")


def test_what_the_requestor_typed_cannot_mention_everyone_or_hide_a_link():
    text = slack.request_text(transaction(message="<!channel> see <http://evil.test|here>"), LINK)
    assert "<!channel>" not in text and "<http://evil.test" not in text
    assert "&lt;!channel&gt; see &lt;http://evil.test|here&gt;" in text


def test_slack_gets_a_bearer_token_and_the_member_id_as_channel(fake_slack, client_for):
    result = client_for.send(dm(text="Hello there"))
    assert result.outcome == "accepted" and result.external_id.startswith("1700000000.")
    (request,) = fake_slack.received
    assert request.headers["Authorization"] == f"Bearer {SLACK_BOT_TOKEN}"
    assert fake_slack.messages[0]["channel"] == "U024BE7LH"
    assert fake_slack.messages[0]["text"] == "Hello there"


@pytest.mark.parametrize("message, error", [
    (dm(token="xoxb-0000000000-0000000000-wrongTokenForTests"),
     "Slack error invalid_auth (the bot token is not valid)"),
    (dm(member_id="U0NOBODY00"), "Slack error channel_not_found (no such member id in this "
                                 "workspace)"),
])
def test_slacks_ok_false_answers_are_permanent_with_its_error_code(client_for, message, error):
    result = client_for.send(message)
    assert (result.outcome, result.http_status, result.error) == ("permanent", 200, error)


@pytest.mark.parametrize("code", ["not_authed", "account_inactive", "token_revoked"])
def test_token_problems_are_permanent(fake_slack, client_for, code):
    fake_slack.answer_next(Answer.error(code))
    result = client_for.send(dm())
    assert result.outcome == "permanent" and result.error.startswith(f"Slack error {code} (")


def test_rate_limiting_is_retryable_after_what_slack_asks(fake_slack, client_for):
    fake_slack.answer_next(Answer.rate_limited(retry_after=42))
    result = client_for.send(dm())
    assert (result.outcome, result.http_status, result.retry_after) == ("retryable", 429, 42)
    assert result.error == "HTTP 429: Slack error ratelimited (Slack asks to slow down)"


@pytest.mark.parametrize("answer", [
    Answer.error("internal_error"), HttpAnswer(503, "Service Unavailable",
                                               content_type="text/plain"),
    HttpAnswer(200, "<html>proxy login</html>", content_type="text/html"),
])
def test_slacks_own_trouble_is_retryable(fake_slack, client_for, answer):
    fake_slack.answer_next(answer)
    assert client_for.send(dm()).outcome == "retryable"


def test_a_hang_past_the_read_timeout_is_retryable(fake_slack):
    impatient = slack.SlackClient(fake_slack.url, connect_timeout=5.0, read_timeout=0.5)
    fake_slack.answer_next(Answer.hanging())
    result = impatient.send(dm())
    assert (result.outcome, result.error) == ("retryable",
                                              "Slack did not answer within 0.5 s (timeout)")
    fake_slack.answer_normally()


@pytest.mark.parametrize("raw, cleaned", [
    (" U024BE7LH ", "U024BE7LH"), ("u024be7lh", "U024BE7LH"), ("W012A3CDE", "W012A3CDE"),
    ("", None),
])
def test_member_ids_are_trimmed_and_upper_cased(raw, cleaned):
    assert slack.clean_member_id(raw) == cleaned


@pytest.mark.parametrize("raw", ["@uma", "Uma User", "C024BE7LH", "U02"])
def test_a_name_or_channel_id_is_not_a_member_id(raw):
    with pytest.raises(ValueError, match="A Slack member id is U or W followed by capital"):
        slack.clean_member_id(raw)


def test_bot_tokens_are_trimmed():
    assert slack.clean_bot_token(f"  {SLACK_BOT_TOKEN}\n") == SLACK_BOT_TOKEN


@pytest.mark.parametrize("raw, message", [
    ("xoxp-1234567890-0987654321-madeUpUserToken",
     "That is not a bot token (it starts with xoxp-)"),
    ("xoxb-short", "A bot token starts with xoxb-"),
    ("xoxb-1234567890 0987654321-madeUpForTests", "with no spaces"),
    ("Bearer xoxb-1234567890-0987654321-madeUpForTests", "A bot token starts with xoxb-"),
])
def test_a_malformed_bot_token_says_what_to_paste_without_repeating_it(raw, message):
    with pytest.raises(ValueError) as info:
        slack.clean_bot_token(raw)
    assert message in str(info.value) and raw not in str(info.value)
