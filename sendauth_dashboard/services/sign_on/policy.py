""""Require single sign-on": when on, the identity provider decides who signs in, so neither a
password nor a passkey signs anyone in, except the admins marked break-glass (the way in
when the provider is down or misconfigured; at least one must remain). Answering a request
with a passkey is not signing in and goes on as before."""
from .configuration import button_label, is_configured, settings


def sso_required(row=None):
    row = row or settings()
    return bool(row.require_sso) and is_configured(row)


def may_sign_in_here(user, row=None):
    """Whether ``user`` (None: nobody has that email) may sign in with a password or a
    passkey, not through the provider."""
    return not sso_required(row) or (user is not None and user.is_break_glass)


def refusal(row=None):
    """What a person is told when their password or passkey does not sign them in."""
    return (f"Your organisation signs in through its identity provider: use “{button_label(row)}”. "
            "Only break-glass admins sign in with a password or passkey here.")
