"""The PagerDuty integration: key, severity, enable, status indicator and test incident."""
from wtforms import PasswordField, SelectField
from wtforms.validators import Length

from ..forms import choices
from . import bp
from .integration import IntegrationForm, IntegrationPage, enabled_field, register

SEVERITY_LABELS = {
    "critical": "Critical: production access, emergencies; immediate response",
    "error": "Error: important, standard production access; escalated after timeout",
    "warning": "Warning: non-production, routine access; lower priority",
    "info": "Info: testing or development access; lowest priority",
}


class PagerDutyForm(IntegrationForm):
    enabled = enabled_field("PagerDuty integration",
                            "Send authentication requests to PagerDuty as incidents.")
    integration_key = PasswordField(
        "Integration key",
        description="The Events API v2 integration key: 32 letters or digits. In PagerDuty: "
                    "Service → Integrations → Events API V2. Leave empty to keep the stored key.",
        validators=[Length(max=1000, message="That is far longer than an integration key.")],
        render_kw={"placeholder": "Paste the 32-character key"},
    )
    severity = SelectField("Severity", choices=choices(SEVERITY_LABELS), default="critical")


register(bp, IntegrationPage(
    channel="pagerduty",
    form=PagerDutyForm,
    what="incident",
    provider="PagerDuty",
    accepted_advice="Check that it reached the right people, then resolve it in PagerDuty.",
    refused_advice="Check the integration key and that the service has an Events API V2 "
                   "integration.",
    remove_path="remove-key",
    external_id_label="dedup key",
))
