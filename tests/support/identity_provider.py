"""A real OpenID Connect provider (``oidc-provider-mock``) in a thread, on loopback, for the
single sign-on tests: people are set with their claims, and a sign-in is authorized the way
its form does it. A test may have it misbehave: change the ID token after signing it, or sign
it with no algorithm (``tamper``)."""
import base64
import json
import threading
import warnings
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import quote

import requests
from authlib.deprecate import AuthlibDeprecationWarning
from werkzeug.serving import make_server

with warnings.catch_warnings():
    # It imports authlib.jose, which Authlib has deprecated for joserfc (the product uses that).
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    import oidc_provider_mock


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims_of(id_token):
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _changed_after_signing(id_token, **claims):
    """The token with ``claims`` changed and its original signature kept."""
    header, _, signature = id_token.split(".")
    payload = _b64(json.dumps({**_claims_of(id_token), **claims}).encode())
    return f"{header}.{payload}.{signature}"


def _unsigned(id_token):
    """The token's claims under ``alg: none``, with no signature (the classic forgery)."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{id_token.split('.')[1]}."


class _Tampering:
    """WSGI middleware around the provider: its token endpoint's ID token, changed."""

    def __init__(self, app):
        self.app, self.change = app, None

    def __call__(self, environ, start_response):
        if self.change is None or environ.get("PATH_INFO") != "/oauth2/token":
            return self.app(environ, start_response)
        kept = {}

        def keep(status, headers, exc_info=None):
            kept.update(status=status, headers=headers)

        body = json.loads(b"".join(self.app(environ, keep)))
        if "id_token" in body:
            body["id_token"] = self.change(body["id_token"])
        data = json.dumps(body).encode()
        headers = [(k, v) for k, v in kept["headers"] if k.lower() != "content-length"]
        start_response(kept["status"], headers + [("Content-Length", str(len(data)))])
        return [data]


class IdentityProvider:
    def __init__(self, server, tampering):
        self.url = f"http://127.0.0.1:{server.server_port}"
        self._tampering = tampering

    def person(self, sub, email=None, email_verified=True, **claims):
        """Set the claims the provider gives ``sub`` (an email's person by default)."""
        claims = {"email": email or sub, "email_verified": email_verified, **claims}
        response = requests.put(f"{self.url}/users/{quote(sub)}", json=claims, timeout=10)
        assert response.status_code == 204, response.text

    def authorize(self, location, sub):
        """Sign ``sub`` in at the authorization address ``location`` (as its form does);
        returns the address the provider sends the browser back to."""
        response = requests.post(location, data={"sub": sub}, allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text
        return response.headers["Location"]

    def tamper(self, how):
        """From now on the ID token has claims changed after signing (``how``: a dict of
        them), is ``"unsigned"``, or (None) is as the provider made it."""
        if isinstance(how, dict):
            self._tampering.change = lambda token: _changed_after_signing(token, **how)
        else:
            self._tampering.change = {None: None, "unsigned": _unsigned}[how]


@contextmanager
def identity_provider(token_lifetime=timedelta(hours=1)):
    """A provider on loopback for the ``with`` block; ``token_lifetime`` below zero issues
    ID tokens that have already expired."""
    app = oidc_provider_mock.app(require_nonce=True, access_token_max_age=token_lifetime)
    app.wsgi_app = tampering = _Tampering(app.wsgi_app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield IdentityProvider(server, tampering)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
