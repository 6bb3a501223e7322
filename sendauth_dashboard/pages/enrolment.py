"""``/enrol/<token>``: a user registers their first passkey (after an admin's reset, a new
one) through an enrolment link, and for an invitation sets their own password too."""
from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import Length

from .. import client_limits
from ..extensions import db
from ..services.people import enrolment, passkeys
from ..services.sign_on import policy
from .auth import sign_in
from .forms import apply_service_error, new_password_field

bp = Blueprint("enrol", __name__, url_prefix="/enrol")


class EnrolForm(FlaskForm):
    password = new_password_field("Choose your password")
    confirm = PasswordField("The same password again")
    name = StringField(
        "Passkey name", description="So you can tell your passkeys apart, e.g. \"Work laptop\".",
        validators=[Length(max=passkeys.NAME_MAX_CHARS, message=(
            f"The name must be at most {passkeys.NAME_MAX_CHARS} characters."))],
        render_kw={"maxlength": passkeys.NAME_MAX_CHARS, "autocomplete": "off"})
    credential = HiddenField()
    submit = SubmitField("Register my passkey")


def _usable(token):
    """(link, None) when the visitor may use it now; else (None, response)."""
    try:
        link = enrolment.find(token)
    except enrolment.EnrolmentError as exc:
        return None, (render_template("enrol/refused.html", reason=str(exc)), 410)
    if link.kind == "passkey" and not current_user.is_authenticated:
        flash(f"Sign in as {link.user.email} to register your passkey.", "info")
        return None, redirect(url_for("auth.login", next=request.path))
    if current_user.is_authenticated and current_user.id != link.user_id:
        return None, (render_template("enrol/refused.html", reason=(
            f"This link is for {link.user.name}, and you are signed in as {current_user.name}. "
            "Sign out, then open the link again.")), 403)
    return link, None


@bp.route("/<token>", methods=["GET", "POST"])
@client_limits.authentication_page
def enrol(token):
    link, refusal = _usable(token)
    if refusal is not None:
        return refusal
    form = EnrolForm()
    if form.validate_on_submit():
        invitation = link.kind == "invitation"
        user = link.user
        try:
            if invitation and form.password.data != form.confirm.data:
                raise enrolment.EnrolmentError("The two passwords differ: type the same one "
                                               "twice.", "confirm")
            passkey = enrolment.complete(token, form.credential.data, name=form.name.data,
                                         password=form.password.data if invitation else None)
            db.session.commit()
        except enrolment.EnrolmentError as exc:
            db.session.rollback()
            apply_service_error(form, exc)
        else:
            if invitation:
                sign_in(user)
                flash(f"Welcome, {user.name}: your password is set and your passkey "
                      f"{passkey.name!r} is registered.", "success")
                return redirect(url_for("main.home"))
            flash(f"Your passkey {passkey.name!r} is registered: use it to verify requests.",
                  "success")
            return redirect(url_for("profile.passkeys"))
    return render_template("enrol/enrol.html", form=form, link=link, token=token,
                           sso_required=policy.sso_required()), \
        400 if form.errors or form.form_errors else 200


@bp.post("/<token>/options")
@client_limits.authentication_page
def options(token):
    """What the page's script hands to navigator.credentials.create: a challenge kept on the
    server for the link's user, single use."""
    link, refusal = _usable(token)
    if refusal is not None:
        return jsonify(error="This enrolment link cannot be used: reload the page."), 400
    options = passkeys.registration_options(link.user)
    db.session.commit()
    return current_app.response_class(options, mimetype="application/json")


@bp.after_request
def _no_referrer(response):
    """The address holds the token: never send it on as a Referer, never cache the page."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
