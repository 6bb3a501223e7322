"""Settings (admins): users and roles, the organisation's rules, each channel's setup, and
outgoing webhooks."""
from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

# The settings sidebar, in its order: (section, label, endpoint), one line a page. Each
# entry shows only to those whose role may open it (its view's ``role_required``).
SIDEBAR = (
    ("Organisation", "Organisation", "settings.organisation"),
    ("Organisation", "Users", "settings.users"),
    ("Requests", "Channels", "settings.channels"),
    ("Integrations", "All API keys", "settings.api_keys_page"),
    ("Integrations", "Webhooks", "settings.webhooks"),
    ("Records", "Audit log", "settings.audit_log"),
)

# The views register themselves on bp.
from . import api_keys, audit, channels, organisation, users, webhooks  # noqa: E402,F401
