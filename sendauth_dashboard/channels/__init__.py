"""The channels that notify a user of an authentication request: the registry.

``REGISTRY`` is the only list of channels; settings pages, forms, messaging preferences,
routing and the navigation read it. A channel is one module here: its settings, what it
needs from a user, its message, how it sends and how it reads the provider's answers
(README, "Adding a channel").
"""
import dataclasses
import re

from flask import current_app

from ..core import event_kinds as kinds
from ..core import event_log
from ..core.secrets import SecretUnreadable, mask, redact
from ..extensions import db
from ..runtime import runtime
from . import integration
from .base import Channel, ChannelUnavailable, Prepared
from .email import Email
from .pagerduty import PagerDuty
from .slack import Slack
from .sms import Sms

__all__ = ["REGISTRY", "Channel", "ChannelUnavailable", "Prepared", "channel", "contact_problem",
           "label", "names", "problem", "resolve_test", "send", "send_test"]

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


# Whatever looks like an answer link's token, in text a provider sent back: masked even when
# it is not the link of the message sent (a server quoting an earlier message, say).
_ANSWER_TOKEN = re.compile(r"(/authenticate/)([A-Za-z0-9_-]{8,})")


def send(instance, prepared):
    """Send ``prepared`` through the channel. The result's error text, the only text a provider
    sends back that is stored or shown, has every secret masked: the credentials, the answer
    link's token (so the link too) and anything shaped like another answer link."""
    result = instance.send(prepared)
    return dataclasses.replace(result, error=redact_provider_text(result.error, instance,
                                                                  prepared))


def redact_provider_text(text, instance, prepared):
    if not text:
        return text
    secrets = list(instance.secrets(prepared.message))
    if prepared.link:
        secrets.append(prepared.link.rstrip("/").rsplit("/", 1)[-1])
    for secret in secrets:
        text = redact(text, secret)
    return _ANSWER_TOKEN.sub(lambda m: m.group(1) + mask(m.group(2)), text)


def send_test(name, *, actor, values=None):
    """A real test message through the channel, to ``actor``; returns (the send's result,
    whether it used settings not saved).

    ``values``: the settings form as typed (``Integration.draft``; nothing: the saved
    settings). Nothing typed is stored. The audit log notes every test; the status indicator
    only one with the saved settings, as it tells how those work. SettingsError says what is
    wrong with a value; ChannelUnavailable why nothing can be sent.
    """
    draft = channel(name).draft(values or {})
    return _send_draft(name, draft, kinds.settings_tested(name), actor,
                       lambda instance: instance.prepare_test(actor, draft))


def resolve_test(name, dedup_key, *, actor, values=None):
    """Resolve the test incident opened with ``dedup_key``, at once, as the test was sent
    (with the form's settings, as ``send_test``)."""
    draft = channel(name).draft(values or {}, purpose="resolve the test incident")
    return _send_draft(name, draft, kinds.settings_test_resolved(name), actor,
                       lambda instance: instance.prepare_test_resolve(dedup_key, draft))


def _send_draft(name, draft, event_kind, actor, prepare):
    result = _send_now(name, prepare, event_kind, actor, status=not draft.unsaved,
                       data={"unsaved": True} if draft.unsaved else {})
    return result, draft.unsaved


def _send_now(name, prepare, event_kind, actor, *, status=True, data=None):
    """What an admin sends from a settings page goes at once, not through the outbox: the
    answer is shown to them. No connection is held while the provider answers. ``status``:
    whether the outcome feeds the status indicator; ``data``: more for the audit event."""
    instance = channel(name)
    try:
        prepared = prepare(instance)
    except SecretUnreadable as exc:
        raise ChannelUnavailable(str(exc).rstrip(".")) from None
    db.session.commit()
    result = send(instance, prepared)
    if status:
        integration.record_outcome(name, success=result.accepted, error=result.error)
    event_log.record(event_kind, actor=actor, data={
        "outcome": result.outcome, "http_status": result.http_status, "error": result.error,
        **(data or {}),
    })
    db.session.commit()
    return result
