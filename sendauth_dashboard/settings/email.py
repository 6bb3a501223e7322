"""Email: the organisation's SMTP server, its status indicator and a test email."""
from wtforms import EmailField, PasswordField, SelectField, StringField

from ..forms import checked_by, choices
from ..services import smtp
from . import bp
from .integration import IntegrationForm, IntegrationPage, enabled_field, register


class EmailForm(IntegrationForm):
    enabled = enabled_field("email", "Email authentication requests to users who have email "
                                     "on in their messaging preferences.")
    host = StringField("SMTP host", description="Your mail server or relay, e.g. smtp.example.com.",
                       validators=[checked_by(smtp.clean_host)])
    port = StringField("Port", default="587", validators=[checked_by(smtp.clean_port)],
                       render_kw={"inputmode": "numeric"})
    tls_mode = SelectField("TLS mode", choices=choices(smtp.TLS_MODE_LABELS), default="starttls")
    username = StringField("Username", description="Leave empty if the server needs no login.",
                           validators=[checked_by(smtp.clean_username)])
    password = PasswordField("Password", description="Leave empty to keep the stored password.",
                             validators=[checked_by(smtp.clean_password)])
    from_address = EmailField(
        "From address", description="What users see as the sender, e.g. sendauth@example.com. "
                                    "The server must allow sending from it.",
        validators=[checked_by(smtp.clean_from_address)])


register(bp, IntegrationPage(
    channel="email",
    form=EmailForm,
    what="email",
    provider="The SMTP server",
    accepted_advice="Check that it arrived at {user.email}; if not, look in the spam folder.",
    refused_advice="Check the host, port, TLS mode, login and from address.",
    remove_path="remove-password",
))
