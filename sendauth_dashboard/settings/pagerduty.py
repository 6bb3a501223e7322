"""The PagerDuty integration: key, severity, enable, status indicator and test incident."""
from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, SelectField, SubmitField
from wtforms.validators import Length

from ..auth import role_required
from ..extensions import db
from ..forms import apply_service_error, choices
from ..models import Event
from ..services import channels, integrations, pagerduty
from . import bp

SEVERITY_LABELS = {
    "critical": "Critical: production access, emergencies; immediate response",
    "error": "Error: important, standard production access; escalated after timeout",
    "warning": "Warning: non-production, routine access; lower priority",
    "info": "Info: testing or development access; lowest priority",
}
AUDIT_ROWS = 10


class PagerDutyForm(FlaskForm):
    enabled = BooleanField("Enable PagerDuty integration",
                           description="Send authentication requests to PagerDuty as incidents.")
    integration_key = PasswordField(
        "Integration key",
        description="The Events API v2 integration key: 32 letters or digits. In PagerDuty: "
                    "Service → Integrations → Events API V2. Leave empty to keep the stored key.",
        validators=[Length(max=1000, message="That is far longer than an integration key.")],
    )
    severity = SelectField("Severity", choices=choices(SEVERITY_LABELS), default="critical")
    submit = SubmitField("Save")


@bp.route("/pagerduty", methods=["GET", "POST"], endpoint="pagerduty")
@role_required("admin")
def pagerduty_settings():
    settings = integrations.pagerduty_settings()
    form = PagerDutyForm(obj=settings)
    if form.validate_on_submit():
        try:
            new_key = (pagerduty.clean_integration_key(form.integration_key.data)
                       if (form.integration_key.data or "").strip() else None)
            changes = integrations.update_pagerduty(
                enabled=form.enabled.data, new_key=new_key, severity=form.severity.data,
                actor=current_user,
            )
            db.session.commit()
        except pagerduty.IntegrationKeyError as exc:
            db.session.rollback()
            form.integration_key.errors.append(str(exc))
        except integrations.SettingsError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "integration_key")
        else:
            if changes:
                flash("Saved: " + "; ".join(changes) + ".", "success")
            else:
                flash("Nothing changed.", "info")
            return redirect(url_for("settings.pagerduty"))
    return render_template(
        "settings/pagerduty.html",
        form=form,
        settings=integrations.pagerduty_settings(),
        key_mask=integrations.pagerduty_key_mask(),
        status=integrations.status_view("pagerduty"),
        audit=_audit_rows(),
    ), 400 if form.errors else 200


def _audit_rows():
    return db.session.scalars(
        select(Event).where(Event.kind.in_(("settings.pagerduty_changed", "settings.pagerduty_tested")))
        .order_by(Event.id.desc()).limit(AUDIT_ROWS)
    ).all()


@bp.post("/pagerduty/test", endpoint="pagerduty_test")
@role_required("admin")
def send_pagerduty_test():
    try:
        result = channels.send_test("pagerduty", actor=current_user)
    except channels.ChannelUnavailable as exc:
        flash(f"{exc}.", "error")
        return redirect(url_for("settings.pagerduty"))
    if result.accepted:
        flash("PagerDuty accepted the test incident"
              + (f" (dedup key {result.external_id})" if result.external_id else "")
              + ". Check that it reached the right people, then resolve it in PagerDuty.",
              "success")
    elif result.outcome == "permanent":
        flash(f"PagerDuty refused the test incident: {result.error}. Check the integration key "
              "and that the service has an Events API V2 integration.", "error")
    else:
        flash(f"The test incident did not get through: {result.error}. Try again in a moment.",
              "error")
    return redirect(url_for("settings.pagerduty"))


@bp.post("/pagerduty/remove-key", endpoint="pagerduty_remove_key")
@role_required("admin")
def remove_pagerduty_key():
    changes = integrations.remove_pagerduty_key(actor=current_user)
    db.session.commit()
    flash(("Removed the integration key" + (" and disabled PagerDuty" if len(changes) > 1 else "")
           + ".") if changes else "There was no stored key to remove.", "success" if changes else "info")
    return redirect(url_for("settings.pagerduty"))
