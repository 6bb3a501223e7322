"""Settings → Sign-in (admins): single sign-on through the organisation's OpenID Connect
provider, and whether it is required (services.sign_on.configuration holds the rules)."""
from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    PasswordField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    widgets,
)

from ...extensions import db
from ...models import ROLES
from ...services.sign_on import configuration, discovery
from ..auth import callback_url, role_required
from ..forms import apply_service_error
from . import bp


class SignInForm(FlaskForm):
    oidc_issuer = StringField(
        "Issuer", description="Your identity provider's address, as its discovery document "
        "names it: for Entra ID https://login.microsoftonline.com/<tenant id>/v2.0, for Okta "
        "https://<your org>.okta.com. Saving reads and checks its discovery document. Empty: "
        "single sign-on is off.", render_kw={"spellcheck": "false", "autocapitalize": "off"})
    oidc_client_id = StringField("Client id", description="The application (client) id the "
                                 "provider gave this app.",
                                 render_kw={"spellcheck": "false", "autocapitalize": "off"})
    oidc_client_secret = PasswordField("Client secret", description="Stored encrypted; never "
                                       "shown again. Leave empty to keep the stored one.")
    oidc_allowed_domains = TextAreaField(
        "Allowed email domains", description="One per line (e.g. example.com). The provider "
        "signs in only people whose verified email is at one of them; the first sign-in of "
        "someone new makes them a member (or the role below).", render_kw={"rows": 3})
    oidc_button_label = StringField(
        "Button label", description="What the sign-in page's button says, e.g. “Sign in with "
        f"Contoso”. Empty: “{configuration.DEFAULT_BUTTON_LABEL}”.")
    oidc_role_claim = StringField(
        "Role claim", description="The ID token's claim that holds the person's groups or "
        "roles, e.g. groups or roles. Set it, and each sign-in sets the role from the map "
        "below; empty, roles are managed on the Users page.",
        render_kw={"spellcheck": "false", "autocapitalize": "off"})
    oidc_role_map = TextAreaField(
        "Role map", description="One “value = role” per line, the value as the claim sends it "
        f"(for Entra ID groups, the group's object id); roles: {', '.join(ROLES)}. Several "
        "values: the highest role wins; none mapped: member. Break-glass admins keep their "
        "role.", render_kw={"rows": 4, "spellcheck": "false"})
    require_sso = BooleanField(
        "Require single sign-on", description="On: passwords and passkeys no longer sign "
        "anyone in, except the break-glass admins below; everyone else signs in through the "
        "provider. Answering requests with a passkey works as before.")
    break_glass = SelectMultipleField(
        "Break-glass admins", coerce=int, widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
        description="Admins who may still sign in with their password or passkey: the way "
        "in when the provider is down or misconfigured. At least one while single sign-on is "
        "required.")
    submit = SubmitField("Save")


def _form_for(settings):
    admins = configuration.active_admins()
    form = SignInForm(data={
        "oidc_issuer": settings.issuer, "oidc_client_id": settings.client_id,
        "oidc_allowed_domains": "\n".join(settings.allowed_domains or []),
        "oidc_button_label": settings.button_label, "oidc_role_claim": settings.role_claim,
        "oidc_role_map": configuration.role_map_text(settings.role_map),
        "require_sso": settings.require_sso,
        "break_glass": [a.id for a in admins if a.break_glass]})
    form.break_glass.choices = [(a.id, f"{a.name} ({a.email})") for a in admins]
    return form


@bp.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
@role_required("admin")
def sign_in_page():
    settings = configuration.settings()
    form = _form_for(settings)
    if form.validate_on_submit():
        try:
            changes = configuration.save(configuration.Submitted(
                issuer=form.oidc_issuer.data, client_id=form.oidc_client_id.data,
                client_secret=form.oidc_client_secret.data,
                allowed_domains=form.oidc_allowed_domains.data,
                button_label=form.oidc_button_label.data, role_claim=form.oidc_role_claim.data,
                role_map=form.oidc_role_map.data, require_sso=form.require_sso.data,
                break_glass_ids=tuple(form.break_glass.data or ())), actor=current_user)
            db.session.commit()
        except (configuration.SignInSettingsError, discovery.DiscoveryError) as exc:
            db.session.rollback()
            apply_service_error(form, exc)
        else:
            flash("Saved: " + "; ".join(changes) + "." if changes else "Nothing changed.",
                  "success" if changes else "info")
            return redirect(url_for("settings.sign_in"))
    return render_template("settings/sign_in.html", form=form, settings=settings,
                           secret_mask=configuration.secret_mask(settings),
                           configured=configuration.is_configured(settings),
                           redirect_uri=callback_url()), 400 if form.errors else 200
