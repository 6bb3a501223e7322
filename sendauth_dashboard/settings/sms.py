"""SMS: the organisation's Twilio account, its status indicator and a test SMS."""
from wtforms import PasswordField, StringField, TelField

from ..forms import checked_by
from ..services import twilio
from . import bp
from .integration import IntegrationForm, IntegrationPage, enabled_field, register


class SmsForm(IntegrationForm):
    enabled = enabled_field("SMS", "Text authentication requests to users who have SMS on in "
                                   "their messaging preferences.")
    account_sid = StringField(
        "Account SID", description="AC and 32 more characters (0-9, a-f): Twilio Console → "
                                   "Account Info.",
        validators=[checked_by(twilio.clean_account_sid)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"})
    auth_token = PasswordField(
        "Auth token", description="32 characters (0-9, a-f), next to the Account SID. Leave "
                                  "empty to keep the stored token.",
        validators=[checked_by(twilio.clean_auth_token)])
    sender = TelField(
        "Sender number", description="A Twilio phone number of your account that can send SMS, "
                                     "in international format, e.g. +14155550123.",
        validators=[checked_by(twilio.clean_sender)])


register(bp, IntegrationPage(
    channel="sms",
    form=SmsForm,
    what="SMS",
    provider="Twilio",
    accepted_advice="Check that it arrived at {user.phone}.",
    refused_advice="Check the Account SID, auth token and sender number.",
    remove_path="remove-token",
    external_id_label="message SID",
))
