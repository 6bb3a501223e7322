"""The shape every integration's settings page shares: configure, status, test, remove the secret.

Each integration module describes its page (``IntegrationPage``) and its form; ``register``
adds the same three views for it: ``/settings/<channel>`` (GET/POST), ``.../test`` and the
one that removes the stored secret.
"""
from dataclasses import dataclass

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SubmitField

from ..auth import role_required
from ..extensions import db
from ..forms import apply_service_error
from ..models import CHANNEL_LABELS, CHANNELS, Event
from ..services import channels, health, integrations

AUDIT_ROWS = 10


class IntegrationForm(FlaskForm):
    """A settings form: each integration adds ``enabled``, its settings and its secret."""

    submit = SubmitField("Save")


def enabled_field(noun, description):
    return BooleanField(f"Enable {noun}", description=description)


@dataclass(frozen=True)
class IntegrationPage:
    channel: str
    form: type
    # What a send is called, and who answers it: "incident", "PagerDuty".
    what: str
    provider: str
    # Said after an accepted test; may name the admin's own address: "{user.email}".
    accepted_advice: str
    refused_advice: str
    remove_path: str
    # The provider's name for what was sent, shown after an accepted test: "dedup key".
    external_id_label: str | None = None

    @property
    def test_noun(self):
        return f"test {self.what}"

    @property
    def template(self):
        return f"settings/{self.channel}.html"

    @property
    def integration(self):
        return integrations.INTEGRATIONS[self.channel]


def register(bp, page):
    channel = page.channel
    bp.add_url_rule(f"/{channel}", endpoint=channel, methods=["GET", "POST"],
                    view_func=role_required("admin")(lambda: settings_page(page)))
    bp.add_url_rule(f"/{channel}/test", endpoint=f"{channel}_test", methods=["POST"],
                    view_func=role_required("admin")(lambda: send_test(page)))
    bp.add_url_rule(f"/{channel}/{page.remove_path}", endpoint=f"{channel}_remove_secret",
                    methods=["POST"], view_func=role_required("admin")(lambda: remove_secret(page)))


def settings_page(page):
    channel = page.channel
    integration = page.integration
    form = page.form(obj=integrations.settings_row(channel))
    if form.validate_on_submit():
        try:
            changes = integrations.update_settings(
                channel, enabled=form.enabled.data, actor=current_user,
                values={s.name: form[s.name].data for s in integration.settings},
            )
            db.session.commit()
        except integrations.SettingsError as exc:
            db.session.rollback()
            apply_service_error(form, exc, integration.secret.name)
        else:
            flash("Saved: " + "; ".join(changes) + "." if changes else "Nothing changed.",
                  "success" if changes else "info")
            return redirect(url_for(f"settings.{channel}"))
    return render_template(
        page.template,
        page=page,
        form=form,
        secret_field=form[integration.secret.name],
        settings=integrations.settings_row(channel),
        secret_mask=integrations.secret_mask(channel),
        save_first=integrations.save_first(channel),
        status=integrations.status_view(channel),
        audit=_audit_rows(channel),
        channel_tabs=_channel_tabs(),
    ), 400 if form.errors else 200


def _audit_rows(channel):
    kinds = (f"settings.{channel}_changed", f"settings.{channel}_tested")
    return db.session.scalars(
        select(Event).where(Event.kind.in_(kinds)).order_by(Event.id.desc()).limit(AUDIT_ROWS)
    ).all()


def _channel_tabs():
    """The channels sub-navigation: each integration's page, whether it is on, and whether
    it is in error (on, and its last send failed)."""
    in_error = health.channels_in_error()
    return [(CHANNEL_LABELS[name], f"settings.{name}", integrations.settings_row(name).enabled,
             name in in_error) for name in CHANNELS]


def send_test(page):
    back = redirect(url_for(f"settings.{page.channel}"))
    try:
        result = channels.send_test(page.channel, actor=current_user)
    except channels.ChannelUnavailable as exc:
        flash(f"{exc}.", "error")
        return back
    if result.accepted:
        reference = (f" ({page.external_id_label} {result.external_id})"
                     if page.external_id_label and result.external_id else "")
        flash(f"{page.provider} accepted the {page.test_noun}{reference}. "
              + page.accepted_advice.format(user=current_user), "success")
    elif result.outcome == "permanent":
        flash(f"{page.provider} refused the {page.test_noun}: {result.error}. "
              + page.refused_advice, "error")
    else:
        flash(f"The {page.test_noun} did not get through: {result.error}. "
              "Try again in a moment.", "error")
    return back


def remove_secret(page):
    integration = page.integration
    label = integration.secret.label
    changes = integrations.remove_secret(page.channel, actor=current_user)
    db.session.commit()
    if changes:
        disabled = f" and disabled {integration.noun}" if "integration disabled" in changes else ""
        flash(f"Removed the {label}{disabled}.", "success")
    else:
        flash(f"There was no stored {label} to remove.", "info")
    return redirect(url_for(f"settings.{page.channel}"))
