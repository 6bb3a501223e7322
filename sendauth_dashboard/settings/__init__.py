"""Settings (admins): users and roles, and the integrations."""
from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

# The views register themselves on bp.
from . import audit, channels, email, organisation, pagerduty, slack, sms, users  # noqa: E402,F401
