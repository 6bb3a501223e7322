"""Settings (admins): users and roles, the organisation's rules, and each channel's setup."""
from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

# The views register themselves on bp.
from . import api_keys, audit, channels, organisation, users  # noqa: E402,F401
