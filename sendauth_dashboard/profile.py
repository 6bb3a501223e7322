"""Every user's own messaging preferences: which channels notify them of a request."""
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, SubmitField, TelField

from .auth import role_required
from .extensions import db
from .models import CHANNEL_LABELS, CHANNELS
from .services import channels, preferences, routing

bp = Blueprint("profile", __name__, url_prefix="/profile")


class MessagingForm(FlaskForm):
    """Only the fields: every rule, formats included, is checked at once by the service."""

    pagerduty = BooleanField(
        "PagerDuty", description="An incident on the organisation's PagerDuty service. "
                                 "You need to be on call for it, or have access to it.")
    email = BooleanField("Email", description="An email to the address you sign in with.")
    sms = BooleanField("SMS", description="A text message to your phone.")
    phone = TelField("Phone number",
                     description="In international format: + and the country code, e.g. "
                                 "+14155550123.",
                     render_kw={"autocomplete": "tel"})
    slack = BooleanField("Slack", description="A direct message from the organisation's "
                                              "Slack app.")
    slack_member_id = StringField(
        "Slack member id",
        description="Like U024BE7LH. In Slack: your profile → ⋮ → Copy member ID.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"})
    submit = SubmitField("Save preferences")


@bp.route("/messaging", methods=["GET", "POST"])
@role_required("member")
def messaging():
    form = MessagingForm(data=preferences.current(current_user))
    if form.validate_on_submit():
        try:
            changes = preferences.update_messaging(
                current_user, wants={name: form[name].data for name in CHANNELS},
                contact={name: form[name].data for name in preferences.CONTACT_DETAILS},
            )
            db.session.commit()
        except preferences.PreferencesError as exc:
            db.session.rollback()
            for name, message in exc.problems.items():
                (form[name].errors if name else form.form_errors).append(message)
        else:
            flash("Your messaging preferences are saved: " + "; ".join(changes) + "."
                  if changes else "Nothing changed.", "success" if changes else "info")
            return redirect(url_for("profile.messaging"))
    return render_template(
        "profile/messaging.html", form=form,
        unavailable={name: channels.problem(name) for name in CHANNELS},
        route=routing.route(current_user), channel_labels=CHANNEL_LABELS,
    ), 400 if form.errors else 200
