"""Each channel's settings page: configure, status indicator, test, remove the stored secret.

The routes take the channel's name from the registry (``channels.REGISTRY``):
``/settings/pagerduty``, ``/settings/email``, ``/settings/sms``, ``/settings/slack``, each with
``.../test`` and ``.../remove-<key|password|token>``. The form is made from the channel's
``settings``; the page's own words are in ``templates/settings/<channel>.html``.
"""
from flask import abort, current_app, flash, redirect, render_template, session, url_for
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
            flash("Saved: " + "; ".join(changes) + "." if changes else "Nothing changed.",
                  "success" if changes else "info")
            return redirect(url_for("settings.channel", name=name))
    return render_template(
        f"settings/{name}.html",
        channel=channel,
        page=channel.page,
        form=form,
        secrets=[(s, s.word or channel.page.secret_word, channel.secret_mask(s))
                 for s in channel.secret_settings],
        settings=channel.settings_row(),
        save_first=channel.save_first(),
        status=integration.status_view(name),
        audit=_audit_rows(name),
        channel_tabs=channel_tabs(),
        test_incident=session.get(_TEST_INCIDENT.format(name)),
        webhook_url=_webhook_url(channel.page),
    ), 400 if form.errors else 200


def _webhook_url(page):
    """Where the provider is told to post back: at the public address (BASE_URL)."""
    if page.webhook_endpoint is None:
        return None
    return current_app.config["BASE_URL"] + url_for(page.webhook_endpoint)


def _audit_rows(name):
    kinds = (f"settings.{name}_changed", f"settings.{name}_tested",
             f"settings.{name}_test_resolved")
    return db.session.scalars(
        select(Event).where(Event.kind.in_(kinds)).order_by(Event.id.desc()).limit(AUDIT_ROWS)
    ).all()


def channel_tabs():
    """The channels sub-navigation: each channel's name, label, whether it is on, and whether
    it is in error (on, and its last send failed)."""
    in_error = health.channels_in_error()
    return [(name, channels.label(name), channels.channel(name).settings_row().enabled,
             name in in_error) for name in channels.names()]


@bp.get("/channels", endpoint="channels")
@role_required("admin")
def channels_overview():
    """Every channel's state and health on one page."""
    return render_template("settings/channels.html", channels=health.channel_health(),
                           channel_tabs=channel_tabs())


@bp.post("/<channel:name>/test", endpoint="channel_test")
@role_required("admin")
def send_test(name):
    page = _channel(name).page
    back = redirect(url_for("settings.channel", name=name))
    try:
        result = channels.send_test(name, actor=current_user)
    except channels.ChannelUnavailable as exc:
        flash(f"{exc}.", "error")
        return back
    # The provider's words may end with a full stop of their own.
    error = (result.error or "").rstrip(".")
    if result.accepted:
        if page.test_resolvable and result.external_id:
            session[_TEST_INCIDENT.format(name)] = result.external_id
        details = [f"{page.external_id_label} {result.external_id}"
                   if page.external_id_label and result.external_id else None, result.note]
        reference = "; ".join(d for d in details if d)
        flash(f"{page.provider} accepted the {page.test_noun}"
              f"{f' ({reference})' if reference else ''}. "
              + page.accepted_advice.format(user=current_user), "success")
    elif result.outcome == "permanent":
        flash(f"{page.provider} refused the {page.test_noun}: {error}. "
              + page.refused_advice, "error")
    else:
        flash(f"The {page.test_noun} did not get through: {error}. "
              "Try again in a moment.", "error")
    return back


# The session key that remembers the admin's last test incident, for its Resolve button.
_TEST_INCIDENT = "{}_test_incident"


@bp.post("/pagerduty/resolve-test", endpoint="pagerduty_resolve_test")
@role_required("admin")
def resolve_test():
    back = redirect(url_for("settings.channel", name="pagerduty"))
    dedup_key = session.get(_TEST_INCIDENT.format("pagerduty"))
    if not pagerduty.is_test_dedup_key(dedup_key):
        flash("There is no test incident of yours to resolve: send one first.", "error")
        return back
    try:
        result = channels.resolve_test("pagerduty", dedup_key, actor=current_user)
    except channels.ChannelUnavailable as exc:
        flash(f"{exc}.", "error")
        return back
    if result.accepted:
        session.pop(_TEST_INCIDENT.format("pagerduty"), None)
        flash(f"PagerDuty accepted the resolve of the test incident (dedup key {dedup_key}).",
              "success")
    elif result.outcome == "permanent":
        flash(f"PagerDuty refused the resolve: {result.error}.", "error")
    else:
        flash(f"The resolve did not get through: {result.error}. Try again in a moment.",
              "error")
    return back


@bp.post("/<channel:name>/remove-<secret_word>", endpoint="channel_remove_secret")
@role_required("admin")
def remove_secret(name, secret_word):
    channel = _channel(name)
    setting = channel.secret_named(secret_word, channel.page.secret_word)
    if setting is None:
        abort(404)
    label = setting.label
    changes = channel.remove_secret(actor=current_user, setting=setting)
    db.session.commit()
    if changes:
        disabled = f" and disabled {channel.noun}" if "integration disabled" in changes else ""
        flash(f"Removed the {label}{disabled}.", "success")
    else:
        flash(f"There was no stored {label} to remove.", "info")
    return redirect(url_for("settings.channel", name=name))
