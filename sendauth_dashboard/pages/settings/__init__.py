"""Settings: users and roles (registrars), the organisation's rules, messages, routing
rules and approval groups, sign-in through the identity provider, each channel's setup, and
outgoing webhooks (admins)."""
from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

# The settings sidebar, in its order: (section, label, endpoint), one line a page. Each
# entry shows only to those whose role may open it (its view's ``role_required``).
SIDEBAR = (
    ("Organisation", "Organisation", "settings.organisation"),
    ("Organisation", "Users", "settings.users"),
    ("Organisation", "Sign-in", "settings.sign_in"),
    ("Requests", "Channels", "settings.channels"),
    ("Requests", "Messages", "settings.messages"),
    ("Requests", "Routing", "settings.routing"),
    ("Requests", "Approval groups", "settings.approval_groups"),
    ("Integrations", "All API keys", "settings.api_keys_page"),
    ("Integrations", "Webhooks", "settings.webhooks"),
    ("Records", "Audit log", "settings.audit_log"),
)

# The views register themselves on bp.
from . import (  # noqa: E402,F401
    api_keys,
    audit,
    channels,
    messages,
    organisation,
    routing,
    scim,
    sign_in,
    users,
    webhooks,
)
