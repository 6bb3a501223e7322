"""Every user's API keys (admins): who made which, what it may do, when it was last used;
revoke any."""
from flask import abort, redirect, render_template, url_for

from ...services.people import api_keys
from ..auth import role_required
from ..profile import revoke_and_say
from . import bp


@bp.get("/api-keys")
@role_required("admin")
def api_keys_page():
    return render_template("settings/api_keys.html", keys=api_keys.every_key())


@bp.post("/api-keys/<int:key_id>/revoke")
@role_required("admin")
def revoke_api_key(key_id):
    key = api_keys.find_by_id(key_id)
    if key is None:
        abort(404)
    revoke_and_say(key)
    return redirect(url_for("settings.api_keys_page"))
