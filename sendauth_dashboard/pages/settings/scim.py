"""SCIM provisioning on Settings → Sign-in (admins): the identity provider's token (issued and
shown once, rotated, revoked), the roles its groups give, and the people it created who still
need an enrolment link. The page itself includes ``settings/_scim_token.html``, which reads
what it shows through ``scim_settings()``."""
from flask import abort, current_app, flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField

from ...extensions import db
from ...models import ROLE_LABELS, ROLES, ScimGroup
from ...services.people.accounts import AccountError
from ...services.provisioning import groups, people, tokens
from ..auth import role_required
from ..forms import choices
from . import bp

NO_ROLE = ""


class GroupRoleForm(FlaskForm):
    role = SelectField("Role its members get", choices=choices({
        NO_ROLE: "No role (membership changes nothing)",
        **{r: ROLE_LABELS[r] for r in ROLES}}))


def scim_settings():
    """What the SCIM part of Settings → Sign-in shows."""
    return {
        "base_url": f"{current_app.config['BASE_URL']}/scim/v2",
        "token": tokens.current(),
        "groups": [(g, GroupRoleForm(formdata=None, prefix=f"group{g.id}",
                                     role=g.role or NO_ROLE), len(groups.members_of(g)))
                   for g in groups.every_group()],
        "awaiting": people.awaiting_enrolment(),
    }


@bp.app_context_processor
def _scim_settings_global():
    return {"scim_settings": scim_settings}


@bp.post("/sign-in/scim-token")
@role_required("admin")
def issue_scim_token():
    """A new token, shown this once (never in a flash message: those live in the cookie);
    the one before stops working."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    token, secret = tokens.issue(actor=current_user)
    db.session.commit()
    response = make_response(render_template("settings/scim_token.html", token=token,
                                             secret=secret, scim=scim_settings()))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/sign-in/scim-token/revoke")
@role_required("admin")
def revoke_scim_token():
    if not FlaskForm().validate_on_submit():
        abort(400)
    if tokens.revoke(actor=current_user):
        db.session.commit()
        flash("The SCIM token is revoked: the identity provider can no longer provision "
              "until you issue a new one.", "success")
    return redirect(url_for("settings.sign_in"))


@bp.post("/sign-in/scim-groups/<int:group_id>/role")
@role_required("admin")
def set_scim_group_role(group_id):
    group = db.session.get(ScimGroup, group_id) or abort(404)
    form = GroupRoleForm(prefix=f"group{group.id}")
    if not form.validate_on_submit():
        flash("Choose one of the listed roles.", "error")
        return redirect(url_for("settings.sign_in"))
    try:
        changed = groups.set_role(group, form.role.data or None, actor=current_user)
        db.session.commit()
    except AccountError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if changed:
            flash(f"Members of {group.display_name} now get "
                  f"{group.role or 'no role from it'}.", "success")
    return redirect(url_for("settings.sign_in"))
