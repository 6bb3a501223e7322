"""Settings → Sign-in, as far as SCIM needs it: a page that only includes the SCIM part.

Drop this file (and templates/settings/sign_in_stub.html) when the single sign-on page,
which owns ``/settings/sign-in`` and includes ``settings/_scim_token.html``, is merged."""
from flask import render_template

from ..auth import role_required
from . import bp


@bp.get("/sign-in", endpoint="sign_in")
@role_required("admin")
def sign_in_page():
    return render_template("settings/sign_in_stub.html")
