"""Form pieces shared by several blueprints."""
from wtforms import SelectChoice, SelectField
from wtforms.validators import ValidationError

from ..models import ROLE_LABELS, ROLES


def choices(labels):
    """Select options from a {value: label} mapping, in its order."""
    return [SelectChoice(value, label) for value, label in labels.items()]


def role_field(label="Role", default="member", validators=()):
    return SelectField(label, choices=choices({r: ROLE_LABELS[r] for r in ROLES}),
                       default=default, validators=list(validators))


def apply_service_error(form, error, fallback_field):
    """Show a service's AccountError (or similar) beside the field it is about."""
    field = getattr(form, getattr(error, "field", None) or fallback_field, None)
    field = field if field is not None else getattr(form, fallback_field)
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
