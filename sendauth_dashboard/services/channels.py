"""The channels that notify a user, each with the same small interface.

``problem()`` says why the organisation cannot send through the channel now (None when it
can); ``prepare()`` builds the outgoing message inside a database transaction (it may read
settings and decrypt credentials); ``send()`` delivers it over the network with no database
work, so no connection is held while a provider is slow. ``secrets()`` lists what must be
masked in any error text the provider sends back.
"""
import dataclasses
import secrets as random_tokens

from flask import current_app

from ..extensions import db
from . import events, integrations, pagerduty, slack, smtp, twilio
from .secrets import SecretUnreadable, redact


class ChannelUnavailable(Exception):
    """The channel cannot send now (disabled or not configured); the message says why."""


class Channel:
    """What every channel shares: its settings row, its problem, the checks before a send.

    A subclass names its provider's client (built from the app's config; its ``send`` takes
    what ``build`` made) and says how a request and a test are built (``build``,
    ``build_test``) and which secrets they carry (``secrets``).
    """

    name = None
    client_class = None
    # The User attribute that says where this channel reaches a person, and its name.
    contact = None
    contact_label = None

    def __init__(self, config):
        self.config = config
        self.client = self.client_class.from_config(config)

    def send(self, prepared):
        return self.client.send(prepared)

    def contact_problem(self, user):
        """Why the user's messaging preferences lack what this channel needs, or None."""
        if self.contact is None or getattr(user, self.contact):
            return None
        return f"no {self.contact_label} in their messaging preferences"

    def recipient(self, user):
        problem = self.contact_problem(user)
        if problem:
            raise ChannelUnavailable(f"{user.name} has {problem}")
        return getattr(user, self.contact)

    def test_recipient(self, sent_by):
        """The admin's own address: a test goes to whoever sends it."""
        if self.contact_problem(sent_by):
            raise ChannelUnavailable(
                f"The test goes to you: add your {self.contact_label} under Messaging "
                "preferences first")
        return getattr(sent_by, self.contact)

    def problem(self):
        return integrations.problem(self.name)

    def prepare(self, transaction, link):
        problem = self.problem()
        if problem:
            raise ChannelUnavailable(problem)
        return self.build(integrations.settings_row(self.name), transaction, link)

    def prepare_test(self, sent_by):
        missing = integrations.save_first(self.name)
        if missing:
            raise ChannelUnavailable(f"{missing}; the test uses the saved settings")
        return self.build_test(integrations.settings_row(self.name), sent_by)

    def secret(self):
        """The stored secret, decrypted. SecretUnreadable when the keys changed since it was
        saved: the dispatcher fails the delivery and shows it on the status indicator."""
        return integrations.stored_secret(self.name)


class PagerDutyChannel(Channel):
    name = "pagerduty"
    client_class = pagerduty.EventsClient

    def build(self, settings, transaction, link):
        return pagerduty.transaction_trigger(
            transaction=transaction,
            routing_key=self.secret(),
            severity=settings.severity,
            link=link,
            base_url=self.config["BASE_URL"],
        )

    def build_test(self, settings, sent_by):
        return pagerduty.test_trigger(
            routing_key=self.secret(),
            severity=settings.severity,
            sent_by=sent_by.name,
            base_url=self.config["BASE_URL"],
            dedup_key=f"sendauth-test-{random_tokens.token_hex(8)}",
        )

    @staticmethod
    def secrets(prepared):
        return [prepared["routing_key"]]


class EmailChannel(Channel):
    name = "email"
    client_class = smtp.Mailer
    contact = "email"
    contact_label = "email address"

    def _server(self, settings):
        return smtp.Server(host=settings.host, port=settings.port, tls_mode=settings.tls_mode,
                           username=settings.username, password=self.secret())

    def build(self, settings, transaction, link):
        message = smtp.request_email(transaction=transaction, link=link,
                                     sender=settings.from_address)
        return smtp.Outgoing(self._server(settings), message)

    def build_test(self, settings, sent_by):
        message = smtp.test_email(sender=settings.from_address, sent_by=sent_by,
                                  settings_url=f"{self.config['BASE_URL']}/settings/email")
        return smtp.Outgoing(self._server(settings), message)

    @staticmethod
    def secrets(prepared):
        return [prepared.server.password]


class SmsChannel(Channel):
    name = "sms"
    client_class = twilio.TwilioClient
    contact = "phone"
    contact_label = "phone number"

    def _sms(self, settings, to, body):
        return twilio.Sms(account_sid=settings.account_sid, auth_token=self.secret(),
                          sender=settings.sender, to=to, body=body)

    def build(self, settings, transaction, link):
        return self._sms(settings, self.recipient(transaction.user),
                         twilio.request_sms(transaction, link))

    def build_test(self, settings, sent_by):
        return self._sms(settings, self.test_recipient(sent_by), twilio.test_sms(sent_by))

    @staticmethod
    def secrets(prepared):
        return [prepared.auth_token]


class SlackChannel(Channel):
    name = "slack"
    client_class = slack.SlackClient
    contact = "slack_member_id"
    contact_label = "Slack member id"

    def build(self, settings, transaction, link):
        return slack.DirectMessage(self.secret(), self.recipient(transaction.user),
                                   slack.request_text(transaction, link))

    def build_test(self, settings, sent_by):
        return slack.DirectMessage(self.secret(), self.test_recipient(sent_by),
                                   slack.test_text(sent_by))

    @staticmethod
    def secrets(prepared):
        return [prepared.bot_token]


CHANNEL_CLASSES = {cls.name: cls for cls in (PagerDutyChannel, EmailChannel, SmsChannel,
                                             SlackChannel)}


def channel(name):
    """The app's instance of the named channel."""
    instances = current_app.extensions.setdefault("sendauth_channels", {})
    if name not in instances:
        instances[name] = CHANNEL_CLASSES[name](current_app.config)
    return instances[name]


def problem(name):
    """Why the organisation cannot send through the channel now, or None."""
    return channel(name).problem()


def contact_problem(name, user):
    """Why ``user`` cannot be reached through the channel whatever the organisation does."""
    return channel(name).contact_problem(user)


def send(instance, prepared):
    """Send ``prepared`` through the channel; the result's error text has every secret masked."""
    result = instance.send(prepared)
    error = result.error
    for secret in instance.secrets(prepared):
        error = redact(error, secret)
    return dataclasses.replace(result, error=error)


def send_test(name, *, actor):
    """A real test message through the channel; feeds its status indicator and the audit log.

    Raises ChannelUnavailable when the channel has nothing to send with.
    """
    instance = channel(name)
    try:
        prepared = instance.prepare_test(actor)
    except SecretUnreadable as exc:
        raise ChannelUnavailable(str(exc).rstrip(".")) from None
    db.session.commit()
    result = send(instance, prepared)
    integrations.record_outcome(name, success=result.accepted, error=result.error)
    events.record(f"settings.{name}_tested", actor=actor, data={
        "outcome": result.outcome, "http_status": result.http_status, "error": result.error,
    })
    db.session.commit()
    return result
