"""Each channel's settings page: configure, status indicator, test, remove the stored secret.

The routes take the channel's name from the registry (``channels.REGISTRY``):
``/settings/pagerduty``, ``/settings/email``, ``/settings/sms``, ``/settings/slack``, each with
``.../test`` and ``.../remove-<key|password|token>``. The form is made from the channel's
``settings``; the page's own words are in ``templates/settings/<channel>.html``.
"""
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.routing import BaseConverter
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TelField,
)
from wtforms.validators import ValidationError

from ... import channels
from ...channels import integration, pagerduty
from ...channels.integration import join_words
from ...core import event_kinds
from ...extensions import db
from ...models import Event
from ...services.reports import health
from ..auth import role_required
from ..forms import apply_service_error, checked_by, choices
from . import bp

AUDIT_ROWS = 10
# Far longer than any setting's value: refused before it reaches the setting's own check.
FIELD_MAX_CHARS = 1000

FIELD_KINDS = {"text": StringField, "password": PasswordField, "email": EmailField,
               "tel": TelField, "select": SelectField}


class ChannelConverter(BaseConverter):
    """A URL part that is the name of a registered channel; any other name is a 404."""

    def __init__(self, url_map):
        super().__init__(url_map)
        self.regex = "|".join(channels.names())


def _not_far_too_long(setting):
    article = "an" if setting.label[0].lower() in "aeiou" else "a"
    message = f"That is far longer than {article} {setting.label}."

    def check(form, field):
        if len(str(field.data or "")) > FIELD_MAX_CHARS:
            raise ValidationError(message)

    return check


def _field(setting):
    options = {"description": setting.description, "default": setting.default,
               "render_kw": dict(setting.render_kw) or None}
    if setting.kind == "select":
        return SelectField(setting.field_label, choices=choices(setting.choices), **options)
    return FIELD_KINDS[setting.kind](
        setting.field_label, validators=[_not_far_too_long(setting), checked_by(setting.clean)],
        **options)


def settings_form(channel):
    """The channel's settings form class: enable, then its settings in order, then Save."""
    fields = {"enabled": BooleanField(channel.page.enable_label,
                                      description=channel.page.enable_description)}
    fields.update({s.name: _field(s) for s in channel.settings})
    fields["submit"] = SubmitField("Save")
    return type(f"{channel.name.title()}SettingsForm", (FlaskForm,), fields)


def _channel(name):
    return channels.channel(name)


@bp.route("/<channel:name>", methods=["GET", "POST"], endpoint="channel")
@role_required("admin")
def settings_page(name):
    channel = _channel(name)
    form = settings_form(channel)(obj=channel.settings_row())
    if form.validate_on_submit():
        was_on = bool(channel.settings_row().enabled)
        try:
            changes = channel.update_settings(
                enabled=form.enabled.data, actor=current_user,
                values={s.name: form[s.name].data for s in channel.settings},
            )
            db.session.commit()
        except integration.SettingsError as exc:
            db.session.rollback()
            apply_service_error(form, exc, channel.secret_setting.name)
        else:
            _say_saved(channel, changes, was_on)
            return redirect(url_for("settings.channel", name=name))
    return render_template(
        f"settings/{name}.html",
        channel=channel,
        page=channel.page,
        form=form,
        secrets=[(s, s.word or channel.page.secret_word, channel.secret_mask(s))
                 for s in channel.secret_settings],
        settings=channel.settings_row(),
        status=integration.status_view(name),
        audit=_audit_rows(name),
        channel_tabs=channel_tabs(),
        test_incident=session.get(_TEST_INCIDENT.format(name)),
        test_result=_last_test_result(name),
        webhook_url=_webhook_url(channel.page),
    ), 400 if form.errors else 200


def _say_saved(channel, changes, was_on):
    """What changed; and, when the channel was off and stays off (the admin did not turn it
    off just now), that it is still off and what it takes to use it."""
    if not changes:
        flash("Nothing changed.", "info")
        return
    saved = "Saved: " + "; ".join(changes)
    if channel.settings_row().enabled or was_on:
        flash(saved + ".", "success")
        return
    missing = channel.missing_settings()
    need = (f"{join_words([s.ask() for s in missing])}, then " if missing else "")
    flash(f"{saved}; still off — {need}tick Enable to use it.", "warning")


def _webhook_url(page):
    """Where the provider is told to post back: at the public address (BASE_URL)."""
    if page.webhook_endpoint is None:
        return None
    return current_app.config["BASE_URL"] + url_for(page.webhook_endpoint)


def _audit_rows(name):
    return db.session.scalars(
        select(Event).where(Event.kind.in_(event_kinds.of_channel(name))).order_by(Event.id.desc()).limit(AUDIT_ROWS)
    ).all()


def channel_tabs():
    """The channels sub-navigation: each channel's name, label, whether it is on, and its
    trouble: "error" (on, its last send failed), "retrying" (on, its last send is being tried
    again, in amber: late, not failing) or None."""
    in_error, retrying = health.channel_troubles()
    return [(name, channels.label(name), channels.channel(name).settings_row().enabled,
             "error" if name in in_error else "retrying" if name in retrying else None)
            for name in channels.names()]


@bp.get("/channels", endpoint="channels")
@role_required("admin")
def channels_overview():
    """Every channel's state and health on one page."""
    return render_template("settings/channels.html", channels=health.channel_health(),
                           channel_tabs=channel_tabs())


@bp.post("/<channel:name>/test", endpoint="channel_test")
@role_required("admin")
def send_test(name):
    """A test with the settings as the form has them (typed, unsaved ones too: never stored,
    nor shown again). Its result shows beside the button: in place when static/js's
    channel_test.js asks, else on the page this redirects back to."""
    channel = _channel(name)
    result = _test_result(channel, _form_values(channel))
    if request.headers.get("X-Requested-With") == "fetch":
        return _test_fragment(channel, result)
    return _back_to_the_test(name, result)


def _form_values(channel):
    """The settings the posted form has (a setting it leaves out keeps its saved value)."""
    return {s.name: request.form[s.name] for s in channel.settings if s.name in request.form}


def _test_fragment(channel, result):
    """The answer beside the test button, for channel_test.js: with the Resolve button when
    there is a test incident, and the status indicator as it is now."""
    return render_template(
        "settings/_test_result.html", page=channel.page, test_result=result,
        test_incident=session.get(_TEST_INCIDENT.format(channel.name)),
        status=integration.status_view(channel.name), fragment=True)


def _test_result(channel, values):
    """What the test's result says: {"category": "success" or "error", "text": ...}."""
    page = channel.page
    too_long = next((s for s in channel.settings if len(values.get(s.name, "")) > FIELD_MAX_CHARS),
                    None)
    if too_long is not None:
        return _said("error", f"The {too_long.label} is far longer than any can be.")
    try:
        result, unsaved = channels.send_test(channel.name, actor=current_user, values=values)
    except (integration.SettingsError, channels.ChannelUnavailable) as exc:
        return _said("error", f"{str(exc).rstrip('.')}.")
    unsaved_note = (" Sent with the settings in the form, which are not saved: Save to keep "
                    "them." if unsaved else "")
    # The provider's words may end with a full stop of their own.
    error = (result.error or "").rstrip(".")
    if not result.accepted:
        if result.outcome == "permanent":
            return _said("error", f"{page.provider} refused the {page.test_noun}: {error}. "
                         + page.refused_advice + unsaved_note)
        return _said("error", f"The {page.test_noun} did not get through: {error}. "
                     "Try again in a moment." + unsaved_note)
    if page.test_resolvable and result.external_id:
        session[_TEST_INCIDENT.format(channel.name)] = result.external_id
    details = [f"{page.external_id_label} {result.external_id}"
               if page.external_id_label and result.external_id else None, result.note]
    reference = "; ".join(d for d in details if d)
    return _said("success", f"{page.provider} accepted the {page.test_noun}"
                 f"{f' ({reference})' if reference else ''}. "
                 + page.accepted_advice.format(user=current_user) + unsaved_note)


def _said(category, text):
    return {"category": category, "text": text}


# The session keys that remember the admin's last test incident, for its Resolve button, and
# the last result to show beside the test button once the page is back.
_TEST_INCIDENT = "{}_test_incident"
_TEST_RESULT = "channel_test_result"


def _back_to_the_test(name, result):
    session[_TEST_RESULT] = {"channel": name, **result}
    return redirect(url_for("settings.channel", name=name, _anchor="test-result"))


def _last_test_result(name):
    result = session.pop(_TEST_RESULT, None)
    return result if result and result.get("channel") == name else None


@bp.post("/pagerduty/resolve-test", endpoint="pagerduty_resolve_test")
@role_required("admin")
def resolve_test():
    """Resolve the admin's test incident with the key the form has, as the test was sent;
    the answer shows where the test's did."""
    channel = _channel("pagerduty")
    result = _resolve_result(channel, _form_values(channel))
    if request.headers.get("X-Requested-With") == "fetch":
        return _test_fragment(channel, result)
    return _back_to_the_test("pagerduty", result)


def _resolve_result(channel, values):
    key = _TEST_INCIDENT.format(channel.name)
    dedup_key = session.get(key)
    if not pagerduty.is_test_dedup_key(dedup_key):
        return _said("error", "There is no test incident of yours to resolve: send one first.")
    try:
        result, _ = channels.resolve_test(channel.name, dedup_key, actor=current_user,
                                          values=values)
    except (integration.SettingsError, channels.ChannelUnavailable) as exc:
        return _said("error", f"{str(exc).rstrip('.')}.")
    if result.accepted:
        session.pop(key, None)
        return _said("success", "PagerDuty accepted the resolve of the test incident "
                                f"(dedup key {dedup_key}).")
    if result.outcome == "permanent":
        return _said("error", f"PagerDuty refused the resolve: {result.error}.")
    return _said("error", f"The resolve did not get through: {result.error}. "
                          "Try again in a moment.")


@bp.post("/<channel:name>/remove-<secret_word>", endpoint="channel_remove_secret")
@role_required("admin")
def remove_secret(name, secret_word):
    channel = _channel(name)
    setting = channel.secret_named(secret_word, channel.page.secret_word)
    if setting is None:
        abort(404)
    label = setting.label
    removal = channel.remove_secret(actor=current_user, setting=setting)
    db.session.commit()
    if removal.removed:
        disabled = f" and disabled {channel.noun}" if removal.disabled else ""
        flash(f"Removed the {label}{disabled}.", "success")
    else:
        flash(f"There was no stored {label} to remove.", "info")
    return redirect(url_for("settings.channel", name=name))
