"""Settings: users and roles (registrars), the organisation's rules, messages and routing
rules, sign-in through the identity provider, each channel's setup, and outgoing webhooks
(admins)."""
from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

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
