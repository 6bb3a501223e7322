"""The organisation's rules (admins): whether verifying a request needs a passkey, and whether
PagerDuty incidents are resolved when a request is final."""
from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField

from ...extensions import db
from ...services.reports import organisation
from ..auth import role_required
from . import bp


class OrganisationForm(FlaskForm):
    require_passkey = BooleanField(
        "Require a passkey to verify",
        description="On: a user verifies a request only with one of their passkeys, and a "
                    "request cannot be sent to someone who has none. Off: a user without a "
                    "passkey verifies by entering their password again.")
    resolve_pagerduty_incidents = BooleanField(
        "Resolve PagerDuty incidents when the request is final",
        description="Off (the default): a reviewer resolves each incident after reviewing the "
                    "outcome, with the button on the request's page. On: SendAuth resolves it "
                    "as soon as the request is verified, denied, cancelled or expired.")
    submit = SubmitField("Save")


@bp.route("/organisation", methods=["GET", "POST"], endpoint="organisation")
@role_required("admin")
def organisation_page():
    current = organisation.settings()
    form = OrganisationForm(data={
        "require_passkey": current.require_passkey,
        "resolve_pagerduty_incidents": current.resolve_pagerduty_incidents})
    if form.validate_on_submit():
        changes = organisation.update(
            require_passkey=form.require_passkey.data,
            resolve_pagerduty_incidents=form.resolve_pagerduty_incidents.data,
            actor=current_user)
        db.session.commit()
        flash("Saved: " + "; ".join(changes) + "." if changes else "Nothing changed.",
              "success" if changes else "info")
        return redirect(url_for("settings.organisation"))
    return render_template("settings/organisation.html", form=form), 400 if form.errors else 200
