"""API keys made through the product's service, and a test client that sends one."""
from sendauth_dashboard.extensions import db
from sendauth_dashboard.models import API_SCOPES, User
from sendauth_dashboard.services.people import api_keys


def make_key(app, user, scopes=API_SCOPES, days=30, name="Test key"):
    """A new API key of ``user`` (a record with ``id``), its secret returned once. Scopes
    beyond the user's role are left out, as the profile page offers them."""
    with app.app_context():
        owner = db.session.get(User, user.id)
        allowed = [s for s in scopes if s in api_keys.scopes_for(owner)]
        _, secret = api_keys.create(owner, name=name, scopes=allowed, days=days)
        db.session.commit()
        return secret


class Api:
    """``app.test_client()`` with ``Authorization: Bearer <secret>`` on every request."""

    def __init__(self, client, secret):
        self.client, self.secret = client, secret

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.secret}", **(headers or {})}

    def get(self, url, headers=None, **kwargs):
        return self.client.get(url, headers=self._headers(headers), **kwargs)

    def post(self, url, json=None, headers=None, **kwargs):
        return self.client.post(url, json=json, headers=self._headers(headers), **kwargs)

    def patch(self, url, json=None, headers=None, **kwargs):
        return self.client.patch(url, json=json, headers=self._headers(headers), **kwargs)

    def delete(self, url, headers=None, **kwargs):
        return self.client.delete(url, headers=self._headers(headers), **kwargs)
