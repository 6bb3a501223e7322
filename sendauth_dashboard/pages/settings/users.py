"""Users and roles: list, invite, change role, deactivate and reactivate; enrolment links.
Registrars and admins; a registrar manages everyone but admins (services.people.accounts)."""
from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length

from ... import channels
from ...extensions import db
from ...models import ROLE_LABELS, User
from ...services.people import accounts, enrolment
from ...services.provisioning import access
from ...services.reports import health
from ..auth import role_required
from ..forms import apply_service_error, choices, role_choices, role_field
from . import bp


class CreateUserForm(FlaskForm):
    email = EmailField("Email", validators=[
        DataRequired("Enter an email address."),
        Length(max=254, message="An email address has at most 254 characters."),
    ])
    name = StringField("Name", validators=[
        DataRequired("Enter a name."),
        Length(max=accounts.MAX_NAME_LENGTH,
               message=f"The name must be at most {accounts.MAX_NAME_LENGTH} characters."),
    ])
    role = role_field()
    send_email = BooleanField(
        "Email the invitation to them",
        description="Through the email channel, when it is set up. Otherwise, or if it fails, "
                    "the link is shown to you once to hand over in person or on a call.")
    submit = SubmitField("Invite user")


class EnrolmentLinkForm(FlaskForm):
    send_email = HiddenField()


class UserSearchForm(FlaskForm):
    """Read from the query string."""

    class Meta:
        csrf = False

    q = StringField("Search", description="Part of a name or an email address.")
    reach = SelectField("Show", choices=choices({
        "": "Everyone", "unreachable": "Those who answer requests and cannot be sent one"}))


class ChangeRoleForm(FlaskForm):
    # Required: without it the field would fall back to its default and demote the user.
    role = role_field(validators=[InputRequired()])


class SetActiveForm(FlaskForm):
    active = HiddenField()


def _user_or_404(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users", methods=["GET", "POST"])
@role_required("registrar")
def users():
    form = CreateUserForm()
    form.role.choices = role_choices(accounts.grantable_roles(current_user))
    if form.validate_on_submit():
        try:
            user = accounts.create_user(
                email=form.email.data, name=form.name.data, role=form.role.data,
                password=None, actor=current_user,
            )
            token = enrolment.issue(user, actor=current_user, kind="invitation")
            db.session.commit()
        except accounts.AccountError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "email")
        except IntegrityError:
            db.session.rollback()
            form.email.errors.append("There is already an account with this email.")
        else:
            return _show_link(user, token, "invitation", form.send_email.data)
    search = UserSearchForm(request.args)
    people = accounts.search(search.q.data)
    reach = health.reach_of(people)
    if search.reach.data == "unreachable":
        # As home counts them: those expected to answer (health.expected_to_answer).
        expected = health.expected_to_answer(people)
        people = [u for u in people if not reach[u.id].reachable and u.id in expected]
    return render_template(
        "settings/users.html", form=form, people=people, reach=reach, search=search,
        searching=bool((search.q.data or "").strip() or search.reach.data),
        registry=channels.REGISTRY,
        role_labels={role: ROLE_LABELS[role] for role in accounts.grantable_roles(current_user)},
        manageable={u.id for u in people if accounts.may_manage(current_user, u)},
        with_passkey={u.id for u in people if reach[u.id].passkeys},
    ), 200 if not form.errors else 400


@bp.post("/users/<int:user_id>/enrolment-link")
@role_required("registrar")
def enrolment_link(user_id):
    """A new enrolment link for the user's first passkey, or a reset of their passkeys."""
    user = _user_or_404(user_id)
    form = EnrolmentLinkForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        token = enrolment.issue(user, actor=current_user)
        db.session.commit()
    except enrolment.EnrolmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("settings.users"))
    return _show_link(user, token, "passkey", form.send_email.data == "1")


def _show_link(user, token, kind, send_email):
    """The link, shown this once (never in a flash message: those live in the cookie), or
    emailed; a failed email says why and shows it."""
    email_error = enrolment.email(user, token, kind) if send_email else None
    response = make_response(render_template(
        "settings/enrolment_link.html", person=user, kind=kind, emailed=send_email,
        email_error=email_error, link=None if send_email and email_error is None
        else enrolment.url(token)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/users/<int:user_id>/role")
@role_required("registrar")
def change_role(user_id):
    user = _user_or_404(user_id)
    form = ChangeRoleForm()
    if not form.validate_on_submit():
        flash("Choose one of the listed roles.", "error")
        return redirect(url_for("settings.users"))
    try:
        changed = accounts.change_role(user, form.role.data, actor=current_user)
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if changed:
            flash(f"{user.name} is now {user.role}.", "success")
    return redirect(url_for("settings.users"))


@bp.post("/users/<int:user_id>/active")
@role_required("registrar")
def set_active(user_id):
    user = _user_or_404(user_id)
    form = SetActiveForm()
    if not form.validate_on_submit() or form.active.data not in ("0", "1"):
        abort(400)
    try:
        changed = access.set_active(user, form.active.data == "1", actor=current_user)
        db.session.commit()
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if changed:
            state = "reactivated: they can sign in again" if user.active else (
                "deactivated: they are signed out and cannot sign in")
            flash(f"{user.name} is {state}.", "success")
    return redirect(url_for("settings.users"))
