"""Settings → Messages (admins): the organisation's email subject and body, SMS body and Slack
text. Each is checked before it is kept (channels.message_templates: {link} in every body, only
known placeholders); one that equals SendAuth's default is kept as "the default". A preview
writes each channel's message for a sample request, as the channel itself would."""
from dataclasses import dataclass

from flask import current_app

from ...channels import message_templates as templates
from ...channels.email import templated_body
from ...channels.sms import templated_sms
from ...channels.sms_text import segments
from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...core.rows import get_or_create
from ...models import MessageTemplates, utcnow


class MessagesRefused(ServiceError):
    """One or more templates cannot be kept; ``errors``: {field: what to change}."""

    def __init__(self, errors):
        super().__init__(next(iter(errors.values())), next(iter(errors)))
        self.errors = errors


def current():
    """{field: the template in use}: the organisation's, or SendAuth's default."""
    return {name: templates.custom(name) or field.default
            for name, field in templates.FIELDS.items()}


def customised():
    """The fields whose template is the organisation's own."""
    return {name for name in templates.FIELDS if templates.custom(name) is not None}


def check_all(texts):
    """({field: kept text}, {field: error}) for the templates given."""
    kept, errors = {}, {}
    for name in templates.FIELDS:
        if name in texts:
            try:
                kept[name] = templates.check(name, texts[name])
            except templates.TemplateError as exc:
                errors[name] = str(exc)
    return kept, errors


def save(texts, *, actor, now=None):
    """Keep the templates given (uncommitted); returns the labels of those that changed.
    MessagesRefused, and nothing kept, when any cannot be used."""
    kept, errors = check_all(texts)
    if errors:
        raise MessagesRefused(errors)
    return _store({name: None if text == templates.FIELDS[name].default else text
                   for name, text in kept.items()}, actor=actor, now=now)


def reset(field_name, *, actor, now=None):
    """Back to SendAuth's default for one field (uncommitted); [] when it was already."""
    return _store({field_name: None}, actor=actor, now=now)


def _store(values, *, actor, now):
    changed = [name for name, value in values.items() if templates.custom(name) != value]
    if not changed:
        return []
    row = get_or_create(MessageTemplates, 1, id=1)
    for name in changed:
        setattr(row, name, values[name])
    row.updated_at = now or utcnow()
    row.updated_by_id = actor.id if actor else None
    labels = [templates.FIELDS[name].label.lower() +
              (" (back to the default)" if values[name] is None else "") for name in changed]
    event_log.record(kinds.SETTINGS_MESSAGES_CHANGED, actor=actor, data={"changes": labels})
    return labels


@dataclass(frozen=True)
class Preview:
    """Each channel's message for the sample request; a field with an error has none."""

    values: dict
    email_subject: str | None
    email_text: str | None
    sms_text: str | None
    sms_segments: object
    slack_text: str | None
    errors: dict


def preview(texts):
    """The sample request's messages in the templates given (the ones in use for the rest)."""
    kept, errors = check_all(texts)
    use = {**current(), **kept}
    config = current_app.config
    values = templates.sample_values(config["BASE_URL"], config["TRANSACTION_TTL_SECONDS"])
    fine = {name: name not in errors for name in templates.FIELDS}
    sms = templated_sms(use["sms_body"], values) if fine["sms_body"] else None
    return Preview(
        values=values,
        email_subject=templates.one_line(templates.as_text(templates.render(
            use["email_subject"], values))) if fine["email_subject"] else None,
        email_text=templated_body(use["email_body"], values)[0] if fine["email_body"]
        else None,
        sms_text=sms, sms_segments=segments(sms) if sms is not None else None,
        slack_text=templates.as_text(templates.render(use["slack_text"], values))
        if fine["slack_text"] else None,
        errors=errors)
