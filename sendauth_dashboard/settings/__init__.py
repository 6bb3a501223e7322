"""Settings (admins): users and roles, and the integrations."""
from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

from . import email, pagerduty, slack, sms, users  # noqa: E402,F401  (views register themselves on bp)
