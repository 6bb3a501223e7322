from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    SearchField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Optional

from ...models import TRANSACTION_STATES
from ...services.requests.transaction_list import SEARCH_MAX_CHARS
from ...services.requests.transactions import CONTEXT_MAX_CHARS, MESSAGE_MAX_CHARS
from ..forms import choices


class NewTransactionForm(FlaskForm):
    user = EmailField("User's email", description="The person who must prove who they are.")
    group = SelectField("Or an approval group", validate_choice=False,
                        description="Every member is asked with their own link; the group's "
                                    "number of members must approve, one deny denies it.")
    message = TextAreaField(
        "Message", validators=[DataRequired("Enter a message: tell the user why you are asking.")],
        description=f"Shown to the user with the request. At most {MESSAGE_MAX_CHARS} characters.",
    )
    context = TextAreaField(
        "Context", description=f"Optional: a ticket number, the system, anything that helps them "
                               f"decide. At most {CONTEXT_MAX_CHARS} characters.")
    submit = SubmitField("Send request")


DAY_FORMAT = "Enter the day as YYYY-MM-DD, for instance 2026-11-29."


class FilterForm(FlaskForm):
    """Read from the query string; an unknown value just means no filter."""

    class Meta:
        csrf = False

    q = SearchField("Search", render_kw={"maxlength": SEARCH_MAX_CHARS},
                    description="Part of a name or email, or words of the message or context, "
                                "such as a ticket number.")
    status = SelectField("Status", choices=choices({"": "Any status",
                                                    **{s: s.title() for s in TRANSACTION_STATES}}))
    user = StringField("User's email")
    requestor = StringField("Requestor's email")
    ticket = StringField("Ticket", description="A ticket's id, exactly, as sent through the API.")
    since = DateField("Sent from", validators=[Optional()], invalid_value_message=DAY_FORMAT)
    until = DateField("Sent until", validators=[Optional()], invalid_value_message=DAY_FORMAT,
                      description="That day included. Days are in UTC.")


class AnswerForm(FlaskForm):
    """Verify or deny: the field ``decision`` is ``verify`` or ``deny``."""
