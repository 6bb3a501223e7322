"""Signing in and out, and the role gate every other blueprint uses."""
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Length

from .. import client_limits
from ..core.tokens import stored_hash_of
from ..extensions import db, login_manager
from ..services.people import accounts, passkeys, sign_ins
from ..services.sign_on import configuration, flow, people, policy

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to continue."
login_manager.login_message_category = "info"


# The signed-in session's token (services.people.sign_ins), kept in the session cookie.
SIGN_IN_KEY = "sign_in"
# Where Flask-Login keeps the signed-in user's ``get_id()`` in the session cookie.
USER_ID_KEY = "_user_id"


@login_manager.user_loader
def load_user(session_id):
    """The session's user, unless deactivated since, their sessions were ended, or this one
    was signed out (a copied cookie included)."""
    user_id, _, version = session_id.partition(".")
    try:
        user = sign_ins.user_of(session.get(SIGN_IN_KEY), int(user_id))
    except ValueError:
        return None
    if user is None or not user.active or str(user.session_version) != version:
        return None
    return user


def signed_in_as(cookie=None):
    """(user id, session version, the hash of the signed-in session's token) that this
    request's session cookie names (or ``cookie``, a session's contents already read), read
    without the database; None when it names none.

    ``load_user`` checks the same against the database, one query a request. A live stream
    checks them against the reading of the person's rights that their streams share
    (services.live.rights.watcher) instead: after a restart every watcher's browser opens its
    stream again at once, thousands of queries in a row otherwise."""
    cookie = session if cookie is None else cookie
    user_id, _, version = str(cookie.get(USER_ID_KEY, "")).partition(".")
    token_hash = stored_hash_of(cookie.get(SIGN_IN_KEY))
    if token_hash is None or not user_id.isdigit() or not version.isdigit():
        return None
    return int(user_id), int(version), token_hash


def sign_in(user):
    """Start a signed-in session for ``user`` that the server can end; commits. The cookie's
    session starts afresh, with a new CSRF secret: a token seen before signing in (on a
    shared machine, say) does not work after."""
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    session[SIGN_IN_KEY] = sign_ins.start(user)
    db.session.commit()
    login_user(user)


def role_required(minimum):
    """Sign-in required; then 403 unless the user's role is ``minimum`` or above."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(minimum):
                abort(403)
            return view(*args, **kwargs)

        wrapped.minimum_role = minimum
        return wrapped

    return decorator


def safe_next(target):
    """``target`` when it is a path on this site, else None (never another host)."""
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[
        DataRequired("Enter your password."), Length(max=accounts.MAX_PASSWORD_LENGTH)])
    submit = SubmitField("Sign in")


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        attempt = client_limits.sign_in_attempt(form.email.data)
        user = accounts.authenticate(form.email.data, form.password.data)
        if not policy.may_sign_in_here(accounts.find_by_email(form.email.data)):
            form.password.errors.append(policy.refusal())
        elif user is None or not user.active:
            # One answer for every failure: a deactivated account must not tell a guesser
            # that the password was right.
            form.password.errors.append(
                "Email or password is incorrect. If you are sure of both, your account may be "
                "deactivated: ask an admin.")
        else:
            attempt.give_back()
            accounts.record_sign_in(user, "password")
            sign_in(user)  # commits both
            return redirect(next_url or url_for("main.home"))
    return _login_page(form, next_url)


class PasskeySignInForm(FlaskForm):
    credential = HiddenField()


def _login_page(form, next_url, passkey_error=None, status=200, sso_error=None):
    """The sign-in page: the identity provider's button first (when set up), then a passkey,
    then the password form."""
    settings = configuration.settings()
    return render_template(
        "auth/login.html", form=form, next_url=next_url, passkey_form=PasskeySignInForm(),
        passkey_error=passkey_error, sso_error=sso_error,
        sso_label=configuration.button_label(settings) if configuration.is_configured(settings)
        else None, sso_required=policy.sso_required(settings)), status


@bp.post("/login/passkey-options")
@client_limits.passkey_sign_in
def passkey_options():
    """A challenge for any passkey of this site (discoverable credentials), for the page's
    script to hand to navigator.credentials.get."""
    options = passkeys.sign_in_options()
    db.session.commit()
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/login/passkey")
@client_limits.passkey_sign_in
def passkey_login():
    """Sign in with one assertion by a passkey: a sign-in like one with the password (a
    session the server can end, the last sign-in, the audit log), with no password typed."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("main.home"))
    if not PasskeySignInForm().validate_on_submit():
        abort(400)
    try:
        user = passkeys.signing_in(request.form.get("credential"))
    except passkeys.PasskeyError as exc:
        db.session.commit()  # the used-up challenge
        return _login_page(LoginForm(formdata=None), next_url, str(exc), 400)
    if not user.active or not policy.may_sign_in_here(user):
        db.session.commit()
        return _login_page(LoginForm(formdata=None), next_url, policy.refusal() if user.active
                           else "This account is deactivated: ask an admin.", 400)
    accounts.record_sign_in(user, "a passkey")
    sign_in(user)  # commits both
    return redirect(next_url or url_for("main.home"))


# The sign-ins this browser started at the provider and has not finished: {state: pending}.
PENDING_KEY = "sign_on_pending"
MAX_PENDING = 3


def callback_url():
    """Where the identity provider sends people back: the redirect URI registered there."""
    return f"{current_app.config['BASE_URL']}{url_for('auth.oidc_callback')}"


@bp.get("/login/oidc")
@client_limits.authentication_page
def oidc_login():
    """Send the browser to the identity provider, remembering this sign-in in its session."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("main.home"))
    settings = configuration.settings()
    if not configuration.is_configured(settings):
        flash("Sign-in through an identity provider is not set up: use your passkey or "
              "password, or ask an admin.", "error")
        return redirect(url_for("auth.login", **({"next": next_url} if next_url else {})))
    try:
        address, pending = flow.start(settings, callback_url(), next_url)
    except flow.SignOnError as exc:
        return _login_page(LoginForm(formdata=None), next_url, status=503, sso_error=str(exc))
    waiting = dict(list(session.get(PENDING_KEY, {}).items())[-(MAX_PENDING - 1):])
    waiting[pending["state"]] = pending
    session[PENDING_KEY] = waiting
    return redirect(address)


@bp.get("/login/oidc/callback")
@client_limits.authentication_page
def oidc_callback():
    """The provider's answer: checked (services.sign_on.flow), then a sign-in like any other
    (a session the server can end, the last sign-in, the audit log). Refused: the sign-in page
    says why, and nothing is saved."""
    waiting = dict(session.get(PENDING_KEY, {}))
    pending = waiting.pop(request.args.get("state", ""), None)
    session[PENDING_KEY] = waiting  # an answer is spent, accepted or not
    settings = configuration.settings()
    next_url = pending and pending.get("next")
    try:
        if not configuration.is_configured(settings):
            raise flow.SignOnError("Sign-in through an identity provider is not set up.")
        claims = flow.finish(settings, pending, request.args, callback_url())
        user = people.person_for(settings, claims)
    except flow.SignOnError as exc:
        db.session.rollback()
        return _login_page(LoginForm(formdata=None), safe_next(next_url), status=400,
                           sso_error=str(exc))
    accounts.record_sign_in(user, "single sign-on")
    sign_in(user)  # commits the account, its link, its role and the sign-in
    return redirect(safe_next(next_url) or url_for("main.home"))


@bp.post("/logout")
def logout():
    """Sign out, for good: the session ends on the server too, so a copy of its cookie is
    refused. With a ``next`` path, sign-in then returns there (e.g. an authentication link)."""
    sign_ins.end(session.pop(SIGN_IN_KEY, None))
    db.session.commit()
    logout_user()
    flash("You are signed out.", "info")
    next_url = safe_next(request.form.get("next"))
    return redirect(url_for("auth.login", next=next_url) if next_url else url_for("auth.login"))
