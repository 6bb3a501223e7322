"""The channels overview (admins): every channel's state and health on one page."""
from flask import render_template

from ..auth import role_required
from ..services import health
from . import bp
from .integration import _channel_tabs


@bp.get("/channels")
@role_required("admin")
def channels():
    return render_template("settings/channels.html", channels=health.channel_health(),
                           channel_tabs=_channel_tabs())
