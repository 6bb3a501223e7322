"""The Slack settings page: what is special to a bot token.

What every channel's page promises is in every_channel/test_settings_page.py.
"""
import pytest

from sendauth_dashboard import channels
from tests.support.helpers import SLACK_BOT_TOKEN


@pytest.fixture
def app_config(fake_slack):
    return {"SLACK_API_URL": fake_slack.url}


def stored_token(app):
    with app.app_context():
        return channels.channel("slack").settings_row().bot_token_ciphertext


def test_a_user_token_is_refused_beside_the_field_without_being_shown(app, as_admin):
    user_token = "xoxp-1234567890-0987654321-madeUpUserToken"
    response = as_admin.post("/settings/slack", {"enabled": "y", "bot_token": user_token})
    assert response.status_code == 400
    assert 'id="bot_token-errors"' in response.text
    assert "That is not a bot token (it starts with xoxp-)" in response.text
    assert user_token not in response.text
    assert stored_token(app) is None


def test_enabling_without_a_token_says_where_to_find_one(app, as_admin):
    response = as_admin.post("/settings/slack", {"enabled": "y"})
    assert response.status_code == 400
    assert ("Paste the bot token before enabling Slack: find it in your Slack app&#39;s settings "
            "under OAuth &amp; Permissions." in response.text)


def test_the_test_message_needs_the_admins_own_member_id(client, as_admin, fake_slack):
    as_admin.post("/settings/slack", {"bot_token": SLACK_BOT_TOKEN})
    as_admin.post("/settings/slack/test")
    html = client.get("/settings/slack").text
    assert "The test goes to you: add your Slack member id under Messaging preferences first." \
        in html
    assert fake_slack.received == []


def test_a_member_id_slack_does_not_know_shows_slacks_error(client, auth, make_user, fake_slack):
    auth.login(make_user("admin", slack_member_id="U0NOBODY00"))
    auth.post("/settings/slack", {"bot_token": SLACK_BOT_TOKEN})
    auth.post("/settings/slack/test")
    html = client.get("/settings/slack").text
    assert ("Slack refused the test Slack message: Slack error channel_not_found (no such member "
            "id in this workspace)." in html)
    assert 'data-state="error"' in html
