"""Settings (admins): users and roles, the organisation's rules, sign-in through the identity
provider, each channel's setup, and outgoing webhooks."""
from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

# The views register themselves on bp.
from . import (  # noqa: E402,F401
    api_keys,
    audit,
    channels,
    organisation,
    sign_in,
    users,
    webhooks,
)
