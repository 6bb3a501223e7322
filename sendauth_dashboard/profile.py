"""Every user's own profile: messaging preferences (which channels notify them of a request)
and passkeys (what proves it is them when they verify one)."""
import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, SubmitField, TelField
from wtforms.validators import Length

from . import channels
from .auth import role_required
from .extensions import db
from .services import organisation, passkeys, preferences, routing

bp = Blueprint("profile", __name__, url_prefix="/profile")


CONTACT_FIELDS = {"text": StringField, "tel": TelField}


def messaging_form():
    """The messaging preferences form: each channel's checkbox, followed by the contact detail
    it needs (if any). Only the fields: every rule, formats included, is checked at once by the
    service."""
    fields = {}
    for cls in channels.REGISTRY.values():
        fields[cls.name] = BooleanField(cls.label, description=cls.preference_description)
        if cls.contact:
            contact = cls.contact
            fields[contact.attribute] = CONTACT_FIELDS[contact.kind](
                contact.field_label, description=contact.description,
                render_kw=dict(contact.render_kw) or None)
    fields["submit"] = SubmitField("Save preferences")
    return type("MessagingForm", (FlaskForm,), fields)


MessagingForm = messaging_form()


@bp.route("/messaging", methods=["GET", "POST"])
@role_required("member")
def messaging():
    form = MessagingForm(data=preferences.current(current_user))
    if form.validate_on_submit():
        try:
            changes = preferences.update_messaging(
                current_user, wants={name: form[name].data for name in channels.names()},
                contact={name: form[name].data for name in preferences.contact_details()},
            )
            db.session.commit()
        except preferences.PreferencesError as exc:
            db.session.rollback()
            for name, message in exc.problems.items():
                (form[name].errors if name else form.form_errors).append(message)
        else:
            flash("Your messaging preferences are saved: " + "; ".join(changes) + "."
                  if changes else "Nothing changed.", "success" if changes else "info")
            return redirect(url_for("profile.messaging"))
    return render_template(
        "profile/messaging.html", form=form,
        unavailable={name: channels.problem(name) for name in channels.names()},
        route=routing.route(current_user), registry=channels.REGISTRY,
    ), 400 if form.errors else 200


class PasskeyForm(FlaskForm):
    name = StringField(
        "Name", description="So you can tell your passkeys apart, e.g. \"Work laptop\" or "
                            "\"Phone\".",
        validators=[Length(max=passkeys.NAME_MAX_CHARS, message=(
            f"The name must be at most {passkeys.NAME_MAX_CHARS} characters."))],
        render_kw={"maxlength": passkeys.NAME_MAX_CHARS, "autocomplete": "off"})
    credential = HiddenField()
    submit = SubmitField("Register a passkey")


# The registration challenge waits in the session until the browser answers, for this long.
REGISTRATION_SESSION_KEY = "passkey_registration"


@bp.route("/passkeys", methods=["GET", "POST"], endpoint="passkeys")
@role_required("member")
def passkeys_page():
    form = PasskeyForm()
    if form.validate_on_submit():
        challenge = _take_registration_challenge()
        try:
            passkey = passkeys.register(current_user, form.credential.data, challenge,
                                        name=form.name.data)
            db.session.commit()
        except passkeys.PasskeyError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            flash(f"Your passkey {passkey.name!r} is registered: use it to verify requests.",
                  "success")
            return redirect(url_for("profile.passkeys"))
    return render_template(
        "profile/passkeys.html", form=form, passkeys=passkeys.of_user(current_user),
        required=organisation.requires_passkey(), origin_mismatch=_origin_mismatch(),
        base_url=current_app.config["BASE_URL"],
    ), 400 if form.errors or form.form_errors else 200


@bp.post("/passkeys/options")
@role_required("member")
def passkey_registration_options():
    """What the page's script hands to navigator.credentials.create."""
    options, challenge = passkeys.registration_options(current_user)
    session[REGISTRATION_SESSION_KEY] = {"challenge": challenge, "at": time.time()}
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/passkeys/<int:passkey_id>/remove")
@role_required("member")
def remove_passkey(passkey_id):
    if not passkeys.remove(current_user, passkey_id):
        abort(404)
    db.session.commit()
    flash("The passkey is removed: it can no longer verify requests.", "success")
    return redirect(url_for("profile.passkeys"))


def _take_registration_challenge():
    """The challenge given out last, once, if it is recent enough."""
    started = session.pop(REGISTRATION_SESSION_KEY, None)
    if not isinstance(started, dict) or not isinstance(started.get("at"), (int, float)):
        return None
    if time.time() - started["at"] > passkeys.CHALLENGE_TTL_SECONDS:
        return None
    return started.get("challenge")


def _origin_mismatch():
    """Passkeys work only at BASE_URL's origin: True when this page was opened at another."""
    expected = urlsplit(current_app.config["BASE_URL"])
    return request.host.lower() != expected.netloc.lower()
