"""The channels that notify a user of an authentication request: the registry.

``REGISTRY`` is the only list of channels; settings pages, forms, messaging preferences,
routing and the navigation read it. A channel is one module here: its settings, what it
needs from a user, its message, how it sends and how it reads the provider's answers
(README, "Adding a channel").
"""
import dataclasses

from flask import current_app

from ..extensions import db
from ..runtime import runtime
from ..services.live import event_log
from ..services.secrets import SecretUnreadable, redact
from . import integration
from .base import Channel, ChannelUnavailable
from .email import Email
from .pagerduty import PagerDuty
from .slack import Slack
from .sms import Sms

__all__ = ["REGISTRY", "Channel", "ChannelUnavailable", "channel", "contact_problem", "label",
           "names", "problem", "resolve_test", "send", "send_test"]

# In the order pages list them.
REGISTRY = {cls.name: cls for cls in (PagerDuty, Email, Sms, Slack)}


def names():
    return tuple(REGISTRY)


def label(name):
    """"PagerDuty", "SMS": the channel's name for people; an unknown name as it is."""
    cls = REGISTRY.get(name)
    return cls.label if cls else name


def channel(name):
    """The app's instance of the named channel."""
    instances = runtime().channels
    if name not in instances:
        instances[name] = REGISTRY[name](current_app.config)
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
    integration.record_outcome(name, success=result.accepted, error=result.error)
    event_log.record(f"settings.{name}_tested", actor=actor, data={
        "outcome": result.outcome, "http_status": result.http_status, "error": result.error,
    })
    db.session.commit()
    return result


def resolve_test(name, dedup_key, *, actor):
    """Resolve the test incident opened with ``dedup_key``, at once, as the test was sent;
    feeds the status indicator and the audit log. ChannelUnavailable says why not."""
    instance = channel(name)
    try:
        prepared = instance.prepare_test_resolve(dedup_key)
    except SecretUnreadable as exc:
        raise ChannelUnavailable(str(exc).rstrip(".")) from None
    db.session.commit()
    result = send(instance, prepared)
    integration.record_outcome(name, success=result.accepted, error=result.error)
    event_log.record(f"settings.{name}_test_resolved", actor=actor, data={
        "outcome": result.outcome, "http_status": result.http_status, "error": result.error,
    })
    db.session.commit()
    return result
