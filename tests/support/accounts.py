"""Users made through the product's own services, as plain records."""
import json

from sendauth_dashboard.extensions import db
from sendauth_dashboard.services.people import accounts, passkeys
from tests.support.authenticator import SoftAuthenticator

PASSWORD = "a test password, long enough"


def create_user(app, role, email, name=None, password=PASSWORD, active=True, passkey=True,
                **prefs):
    """A user made through the accounts service of ``app``, as a plain record.

    With ``passkey`` (the default: the organisation requires one to receive a request) they
    register one made by a software authenticator, kept on the record as ``authenticator``."""
    with app.app_context():
        user = accounts.create_user(email=email, name=name or email.split("@")[0].title(),
                                    role=role, password=password)
        user.active = active
        for key, value in prefs.items():
            setattr(user, key, value)
        db.session.flush()
        authenticator = register_passkey(app, user) if passkey else None
        db.session.commit()
        return UserRecord(user.id, user.email, user.name, user.role, authenticator)


def register_passkey(app, user, name="Test passkey"):
    """Register a new software passkey for ``user`` the way an enrolment link does, with a
    challenge kept on the server (uncommitted)."""
    authenticator = SoftAuthenticator(app.config["BASE_URL"])
    options = passkeys.registration_options(user)
    passkeys.register(user, json.dumps(authenticator.create(options)), name=name)
    return authenticator


class UserRecord:
    def __init__(self, id, email, name, role, authenticator=None):
        self.id, self.email, self.name, self.role = id, email, name, role
        self.authenticator = authenticator
