"""Form pieces shared by several blueprints."""
from wtforms import PasswordField, SelectChoice, SelectField
from wtforms.validators import ValidationError

from ..core.errors import ServiceError
from ..models import ROLE_LABELS, ROLES
from ..services.people import accounts


def choices(labels):
    """Select options from a {value: label} mapping, in its order."""
    return [SelectChoice(value, label) for value, label in labels.items()]


def role_choices(roles=ROLES):
    return choices({r: ROLE_LABELS[r] for r in roles})


def role_field(label="Role", default="member", validators=()):
    return SelectField(label, choices=role_choices(), default=default,
                       validators=list(validators))


def new_password_field(label):
    """A field for choosing a password, saying the rule (services.people.accounts)."""
    return PasswordField(label, description=(
        f"At least {accounts.MIN_PASSWORD_LENGTH} characters, not a common one: four or five "
        "unrelated words work well."))


def apply_service_error(form, error: ServiceError, fallback_field=None, renamed=None):
    """Show a service's error beside the field it is about: ``error.field`` (``renamed`` maps
    a service's name for a field to the form's, or to None for the form as a whole); else
    beside ``fallback_field``; else above the form."""
    name = (renamed or {}).get(error.field, error.field)
    field = form[name] if name and name in form else None
    if field is None and fallback_field:
        field = form[fallback_field]
    if field is None:
        form.form_errors.append(str(error))
    else:
        field.errors = list(field.errors) + [str(error)]


def checked_by(clean):
    """A validator that runs a service's clean function; its message shows beside the field.

    An empty field passes: whether it may be empty is the service's rule, not the format's.
    """

    def check(form, field):
        if field.data is None or field.data == "":
            return
        try:
            clean(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    return check
