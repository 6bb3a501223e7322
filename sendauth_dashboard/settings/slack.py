"""Slack: the organisation's Slack app (its bot token), its status indicator and a test message."""
from wtforms import PasswordField

from ..forms import checked_by
from ..services import slack
from . import bp
from .integration import IntegrationForm, IntegrationPage, enabled_field, register


class SlackForm(IntegrationForm):
    enabled = enabled_field("Slack", "Send authentication requests as direct messages to users "
                                     "who have Slack on in their messaging preferences.")
    bot_token = PasswordField(
        "Bot token", description="Starts with xoxb-: your Slack app's settings → OAuth & "
                                 "Permissions → Bot User OAuth Token. The app needs the "
                                 "chat:write scope. Leave empty to keep the stored token.",
        validators=[checked_by(slack.clean_bot_token)], render_kw={"placeholder": "xoxb-…"})


register(bp, IntegrationPage(
    channel="slack",
    form=SlackForm,
    what="Slack message",
    provider="Slack",
    accepted_advice="Check your direct messages from the app in Slack ({user.slack_member_id}).",
    refused_advice="Check the bot token, the app's chat:write scope and your member id.",
    remove_path="remove-token",
))
