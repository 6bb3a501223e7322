"""Users and roles: list, create, change role, deactivate and reactivate."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, InputRequired, Length

from .. import channels
from ..auth import role_required
from ..extensions import db
from ..forms import apply_service_error, choices, role_field
from ..models import User
from ..services import accounts, health
from . import bp

MAX_SEARCH = 254


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
    password = PasswordField(
        "Initial password",
        description=f"At least {accounts.MIN_PASSWORD_LENGTH} characters. Give it to the person "
                    "over a channel you trust.",
        validators=[DataRequired("Enter an initial password.")],
    )
    submit = SubmitField("Create user")


class UserSearchForm(FlaskForm):
    """Read from the query string."""

    class Meta:
        csrf = False

    q = StringField("Search", description="Part of a name or an email address.")
    reach = SelectField("Show", choices=choices({
        "": "Everyone", "unreachable": "Only those who cannot be sent a request"}))


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
@role_required("admin")
def users():
    form = CreateUserForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(
                email=form.email.data, name=form.name.data, role=form.role.data,
                password=form.password.data, actor=current_user,
            )
            db.session.commit()
        except accounts.AccountError as exc:
            db.session.rollback()
            apply_service_error(form, exc, "email")
        except IntegrityError:
            db.session.rollback()
            form.email.errors.append("There is already an account with this email.")
        else:
            flash(f"{user.name} ({user.email}) can now sign in as {user.role}.", "success")
            return redirect(url_for("settings.users"))
    search = UserSearchForm(request.args)
    query = select(User).order_by(User.active.desc(), User.name)
    needle = (search.q.data or "").strip().lower()[:MAX_SEARCH]
    if needle:
        query = query.where(or_(func.lower(User.name).contains(needle, autoescape=True),
                                func.lower(User.email).contains(needle, autoescape=True)))
    people = db.session.scalars(query).all()
    reach = health.reach_of(people)
    if search.reach.data == "unreachable":
        people = [u for u in people if not reach[u.id].reachable]
    return render_template(
        "settings/users.html", form=form, people=people, reach=reach, search=search,
        searching=bool(needle or search.reach.data), registry=channels.REGISTRY,
        role_forms={u.id: ChangeRoleForm(formdata=None, role=u.role) for u in people},
    ), 200 if not form.errors else 400


@bp.post("/users/<int:user_id>/role")
@role_required("admin")
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
@role_required("admin")
def set_active(user_id):
    user = _user_or_404(user_id)
    form = SetActiveForm()
    if not form.validate_on_submit() or form.active.data not in ("0", "1"):
        abort(400)
    try:
        changed = accounts.set_active(user, form.active.data == "1", actor=current_user)
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
