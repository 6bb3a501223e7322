"""Every user's own messaging preferences: which channels notify them of a request."""
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField

from .auth import role_required
from .extensions import db
from .services import channels, events

bp = Blueprint("profile", __name__, url_prefix="/profile")


class MessagingForm(FlaskForm):
    pagerduty = BooleanField(
        "PagerDuty", description="An incident on the organisation's PagerDuty service. "
                                 "You need to be on call for it, or have access to it.")
    submit = SubmitField("Save preferences")


@bp.route("/messaging", methods=["GET", "POST"])
@role_required("member")
def messaging():
    form = MessagingForm(data={"pagerduty": current_user.notify_pagerduty})
    if form.validate_on_submit():
        changes = {}
        if form.pagerduty.data != current_user.notify_pagerduty:
            current_user.notify_pagerduty = form.pagerduty.data
            changes["pagerduty"] = form.pagerduty.data
        if changes:
            events.record("profile.messaging_changed", actor=current_user, data=changes)
            db.session.commit()
            flash("Your messaging preferences are saved.", "success")
        else:
            flash("Nothing changed.", "info")
        return redirect(url_for("profile.messaging"))
    return render_template("profile/messaging.html", form=form,
                           pagerduty_problem=channels.problem("pagerduty"))
