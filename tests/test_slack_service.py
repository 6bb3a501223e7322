"""Slack direct messages: the text, the bot token, and Slack's answers (most of them HTTP 200)."""
from types import SimpleNamespace

import pytest
import requests

from sendauth_dashboard.channels import slack
from tests.support.helpers import SLACK_BOT_TOKEN

from .fakes.http import Answer as HttpAnswer
from .fakes.slack import SPEC_ERRORS, Answer, FakeSlack

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
    text, blocks = slack.request_message(transaction(), LINK)
    assert text == "Authentication request from Hana Helpdesk"
    assert FakeSlack.shown({"text": text, "blocks": blocks}) == (
        "Authentication request from Hana Helpdesk\n"
        "Message: Please confirm your password reset\n"
        "Context: Ticket #4521\n"
        f"Verify or deny: {LINK}")


def test_what_the_requestor_typed_cannot_mention_everyone_or_hide_a_link():
    text, blocks = slack.request_message(
        transaction(message="<!channel> see <http://evil.test|here>"), LINK)
    (section,) = blocks[0]["elements"]
    links = [e for e in section["elements"] if e["type"] != "text"]
    assert links == [{"type": "link", "url": LINK}]
    assert "Message: <!channel> see <http://evil.test|here>" in FakeSlack.shown(
        {"text": text, "blocks": blocks})
    heading, _ = slack.request_message(
        SimpleNamespace(requestor=SimpleNamespace(name="<!here> & co"), message="m",
                        context=""), LINK)
    assert heading == "Authentication request from &lt;!here&gt; &amp; co"


@pytest.mark.parametrize("typed", ["*not bold*", "_not italic_", "~not struck~", "`not code`",
                                   "a*b_c~d`e", "> not a quote"])
def test_what_the_requestor_typed_is_shown_as_typed_with_the_heading_still_bold(
        fake_slack, client_for, typed):
    name = f"Hana {typed}"
    sent = transaction(message=typed, context=typed)
    sent.requestor.name = name
    text, blocks = slack.request_message(sent, LINK)
    assert client_for.send(slack.DirectMessage(SLACK_BOT_TOKEN, "U024BE7LH", text, blocks)
                           ).accepted
    (posted,) = fake_slack.messages
    (block,) = posted["blocks"]
    (section,) = block["elements"]
    heading, body = section["elements"][:2]
    # rich_text words are never read as mrkdwn: what was typed is what Slack shows.
    assert block["type"] == "rich_text"
    assert heading == {"type": "text", "text": f"Authentication request from {name}",
                       "style": {"bold": True}}
    assert body == {"type": "text", "text": f"\nMessage: {typed}\nContext: {typed}"}
    # The notification's fallback has no formatting of ours for a * in the name to break.
    assert posted["text"] == f"Authentication request from {name}".replace(">", "&gt;")


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


def test_slacks_http_200_rate_limited_is_retryable_not_a_token_problem(fake_slack, client_for):
    # chat.postMessage's documented error list has rate_limited (HTTP 200), besides the
    # ratelimited body of an HTTP 429.
    assert "rate_limited" in SPEC_ERRORS
    fake_slack.answer_next(Answer.error("rate_limited"))
    result = client_for.send(dm())
    assert (result.outcome, result.http_status) == ("retryable", 200)
    assert result.error == "Slack error rate_limited (Slack asks to slow down)"


@pytest.mark.parametrize("body, problem", [
    ({"channel": "U024BE7LH", "text": "Hi", "unfurl_links": "no"},
     "unfurl_links: 'no' is not of type 'boolean'"),
    ({"channel": "U024BE7LH", "txt": "Hi"}, "('txt' was unexpected)"),
    ({"text": "Hi"}, "'channel' is a required property"),
])
def test_the_fake_refuses_a_request_that_breaks_slacks_spec(fake_slack, body, problem):
    response = requests.post(f"{fake_slack.url}/chat.postMessage", json=body, timeout=5,
                             headers={"Authorization": f"Bearer {SLACK_BOT_TOKEN}"})
    assert response.json() == {"ok": False, "error": "invalid_arguments"}
    (violation,) = fake_slack.spec_violations
    assert any(problem in p for p in violation)
    fake_slack.spec_violations.clear()  # broken on purpose


def test_what_we_send_holds_to_slacks_spec(fake_slack, client_for):
    text, blocks = slack.request_message(transaction(), LINK)
    assert client_for.send(slack.DirectMessage(SLACK_BOT_TOKEN, "U024BE7LH", text, blocks)
                           ).accepted
    assert fake_slack.spec_violations == []


@pytest.mark.parametrize("code", sorted(slack.RETRYABLE_ERRORS - {"ratelimited"}))
def test_every_error_slack_may_outgrow_is_retryable(fake_slack, client_for, code):
    fake_slack.answer_next(Answer.error(code))
    assert client_for.send(dm()).outcome == "retryable"


@pytest.mark.parametrize("code", sorted(
    (set(SPEC_ERRORS) | set(slack.ADVICE)) - slack.RETRYABLE_ERRORS))
def test_every_other_documented_error_is_permanent(fake_slack, client_for, code):
    fake_slack.answer_next(Answer.error(code))
    result = client_for.send(dm())
    assert (result.outcome, result.http_status) == ("permanent", 200)
    assert result.error.startswith(f"Slack error {code}")


def test_the_fake_answers_only_as_slack_documents():
    with pytest.raises(AssertionError, match="breaks Slack's spec"):
        Answer.error("no_such_error_anywhere")


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
