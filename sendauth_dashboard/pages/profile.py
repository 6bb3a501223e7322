"""Every user's own profile: messaging preferences (which channels notify them of a request),
passkeys (what proves it is them when they verify one) and their password.

Changing how one is reached or adding a passkey needs a fresh proof with an existing passkey
(the password, for contacts, when there is none): a password alone never does either. A new
password needs the current one and, with a passkey, the passkey too."""
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
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
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TelField,
)
from wtforms.validators import InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from .. import channels
from ..channels.integration import join_words
from ..extensions import db
from ..services.people import accounts, api_keys, passkeys, passwords, preferences, proofs
from ..services.reports import organisation
from ..services.requests import routing
from ..services.sign_on import configuration, policy
from .auth import role_required, sign_in
from .forms import apply_service_error, choices, new_password_field

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
    fields["proof"] = HiddenField()
    fields["current_password"] = PasswordField(
        "Your current password", description="Changing how you are reached needs it: with a "
                                             "passkey, your browser asks for that instead.")
    fields["submit"] = SubmitField("Save preferences")
    return type("MessagingForm", (FlaskForm,), fields)


MessagingForm = messaging_form()


@bp.route("/messaging", methods=["GET", "POST"])
@role_required("member")
def messaging():
    form = MessagingForm(data=preferences.current(current_user))
    offered = preferences.offered(current_user)
    if form.validate_on_submit():
        wants, contact = preferences.as_chosen(
            current_user, offered, wants={name: form[name].data for name in channels.names()},
            contact={name: form[name].data for name in preferences.contact_details()})
        try:
            changes = preferences.update_messaging(
                current_user, wants=wants, contact=contact,
                credential=form.proof.data, password=form.current_password.data,
            )
            db.session.commit()
        except preferences.PreferencesError as exc:
            db.session.rollback()
            for name, message in exc.problems.items():
                (form[name].errors if name else form.form_errors).append(message)
        except proofs.ProofError as exc:
            db.session.commit()  # a passkey's challenge is used up; nothing else was written
            apply_service_error(form, exc, renamed={"proof": None})
        else:
            flash("Your messaging preferences are saved: " + "; ".join(changes) + "."
                  if changes else "Nothing changed.", "success" if changes else "info")
            return redirect(url_for("profile.messaging"))
    return render_template(
        "profile/messaging.html", form=form,
        unavailable={name: channels.problem(name) for name in channels.names()},
        route=routing.route(current_user), registry=channels.REGISTRY, offered=offered,
        not_offered=join_words([channels.label(n) for n in channels.names() if n not in offered]
                               or [""]),
        proof=proofs.needed(current_user),
    ), 400 if form.errors or form.form_errors else 200


class PasskeyForm(FlaskForm):
    name = StringField(
        "Name", description="So you can tell your passkeys apart, e.g. \"Work laptop\" or "
                            "\"Phone\".",
        validators=[Length(max=passkeys.NAME_MAX_CHARS, message=(
            f"The name must be at most {passkeys.NAME_MAX_CHARS} characters."))],
        render_kw={"maxlength": passkeys.NAME_MAX_CHARS, "autocomplete": "off"})
    credential = HiddenField()
    # A fresh assertion with a passkey the user already has.
    proof = HiddenField()
    submit = SubmitField("Register a passkey")


@bp.route("/passkeys", methods=["GET", "POST"], endpoint="passkeys")
@role_required("member")
def passkeys_page():
    form = PasskeyForm()
    if form.validate_on_submit():
        try:
            passkey = passkeys.add(current_user, form.credential.data, form.proof.data,
                                   name=form.name.data)
            db.session.commit()
        except passkeys.PasskeyError as exc:
            db.session.commit()  # the challenges are used up; nothing else was written
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
    """What the page's script hands to navigator.credentials.create: a challenge kept on the
    server, single use."""
    if not passkeys.has_passkey(current_user):
        return jsonify(error="Your first passkey is registered through an enrolment link: "
                             "ask an admin for one."), 400
    options = passkeys.registration_options(current_user)
    db.session.commit()
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/proof-options")
@role_required("member")
def proof_options():
    """What the page's script hands to navigator.credentials.get to prove it is the user
    before a change (a passkey added, how they are reached)."""
    try:
        options = passkeys.proof_options(current_user)
    except passkeys.PasskeyError as exc:
        return jsonify(error=str(exc)), 400
    db.session.commit()
    return current_app.response_class(options, mimetype="application/json")


class RemovePasskeyForm(FlaskForm):
    proof = HiddenField()


@bp.post("/passkeys/<int:passkey_id>/remove")
@role_required("member")
def remove_passkey(passkey_id):
    form = RemovePasskeyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        removed = passkeys.remove(current_user, passkey_id, form.proof.data)
    except passkeys.PasskeyError as exc:
        db.session.commit()  # the proof's challenge is used up; nothing else was written
        flash(f"The passkey was not removed: {exc}", "error")
        return redirect(url_for("profile.passkeys"))
    if not removed:
        abort(404)
    db.session.commit()
    flash("The passkey is removed: it can no longer verify requests.", "success")
    return redirect(url_for("profile.passkeys"))


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password")
    new_password = new_password_field("New password")
    confirm = PasswordField("The new password again")
    # With a passkey: a fresh assertion with it (services.people.passwords).
    proof = HiddenField()
    submit = SubmitField("Change password")


@bp.route("/password", methods=["GET", "POST"])
@role_required("member")
def password():
    """Change one's own password; every other session of this user ends."""
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            if form.new_password.data != form.confirm.data:
                raise accounts.AccountError("The two new passwords differ: type the same one "
                                            "twice.", "confirm")
            passwords.change(user, current=form.current_password.data,
                             new=form.new_password.data, credential=form.proof.data)
            db.session.commit()
        except accounts.AccountError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "new_password", renamed={"password": "new_password"})
        except proofs.ProofError as exc:
            db.session.commit()  # a passkey's challenge is used up; nothing else was written
            apply_service_error(form, exc, renamed={"proof": None})
        else:
            sign_in(user)
            flash("Your password is changed. You are signed out everywhere else.", "success")
            return redirect(url_for("profile.password"))
    return render_template("profile/password.html", form=form,
                           proof=proofs.needed(current_user), sso=_sso_note()), \
        400 if form.errors or form.form_errors else 200


def _sso_note():
    """With single sign-on required: ``break_glass`` (this password still signs in) or
    ``sso`` (it does not), with the button's words; else None."""
    if not policy.sso_required():
        return None
    return {"kind": "break_glass" if current_user.is_break_glass else "sso",
            "label": configuration.button_label()}


def _origin_mismatch():
    """Passkeys work only at BASE_URL's origin: True when this page was opened at another."""
    expected = urlsplit(current_app.config["BASE_URL"])
    return request.host.lower() != expected.netloc.lower()


class ApiKeyForm(FlaskForm):
    name = StringField("Name", description="What uses it, such as \"Jira button\".",
                       render_kw={"maxlength": api_keys.MAX_NAME_LENGTH, "autocomplete": "off"})
    scopes = SelectMultipleField(
        "Scopes", choices=choices(api_keys.SCOPE_LABELS), validate_choice=False,
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
        description="What the key may do; never more than your role allows.")
    expires_in_days = IntegerField(
        "Expires in (days)", default=90,
        validators=[InputRequired(f"Enter 1 to {api_keys.MAX_DAYS} days.")],
        description=f"Required: at most {api_keys.MAX_DAYS} days.",
        render_kw={"min": 1, "max": api_keys.MAX_DAYS})
    submit = SubmitField("Create the key")


@bp.route("/api-keys", methods=["GET", "POST"])
@role_required("member")
def api_keys_page():
    """The user's own keys; a new one is shown this once."""
    form = ApiKeyForm()
    form.scopes.choices = _scope_choices()
    secret = None
    if form.validate_on_submit():
        try:
            key, secret = api_keys.create(current_user, name=form.name.data,
                                          scopes=form.scopes.data,
                                          days=form.expires_in_days.data)
            db.session.commit()
        except api_keys.ApiKeyError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "name")
        else:
            form = ApiKeyForm(formdata=None)
            form.scopes.choices = _scope_choices()
    response = current_app.make_response((render_template(
        "profile/api_keys.html", form=form, keys=api_keys.keys_of(current_user), secret=secret,
        may_create=bool(form.scopes.choices)), 400 if form.errors or form.form_errors else 200))
    response.headers["Cache-Control"] = "no-store"
    return response


def _scope_choices():
    """The scopes the signed-in user's role lets them give a key."""
    return choices({s: api_keys.SCOPE_LABELS[s] for s in api_keys.scopes_for(current_user)})


@bp.post("/api-keys/<int:key_id>/revoke")
@role_required("member")
def revoke_api_key(key_id):
    key = api_keys.find_by_id(key_id)
    if key is None or key.user_id != current_user.id:
        abort(404)
    revoke_and_say(key)
    return redirect(url_for("profile.api_keys_page"))


def revoke_and_say(key):
    """Revoke ``key`` as the signed-in user and say so (the settings page does the same)."""
    if api_keys.revoke(key, actor=current_user):
        db.session.commit()
        flash(f"The API key {key.name} ({key.prefix}…) is revoked: it no longer works.",
              "success")
    else:
        flash(f"The API key {key.name} was revoked already.", "info")
