"""The authorization code flow with PKCE (Authlib's client), and the ID token's checks.

``start`` makes the provider's sign-in address and what the browser's session keeps until it
comes back: a random ``state`` (the answer is for this browser's request), a ``nonce`` (the ID
token was made for this request) and the PKCE verifier (only this app can spend the code).
``finish`` checks the answer and spends the code once at the provider's token endpoint, then
checks the ID token: signed by the provider's key with an algorithm it announced (never
``none``), its issuer, audience (this client), times and nonce; then a verified email. Every
refusal is a SignOnError whose message says what happened and what to do.
"""
import hmac
import secrets
import time

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from ...core.errors import ServiceError
from ...core.secrets import SecretUnreadable
from .configuration import client_secret
from .discovery import TIMEOUT

SCOPES = "openid email profile"
# How long a sign-in may stay at the provider before its answer is refused.
PENDING_SECONDS = 600
# Clock difference allowed between this server and the provider, in seconds.
LEEWAY = 60
TRY_AGAIN = "Try again with the button below."


class SignOnError(ServiceError):
    """A sign-in through the provider that was refused; the message is for the person."""


def _client(settings, redirect_uri):
    try:
        secret = client_secret(settings)
    except SecretUnreadable:
        raise SignOnError("Sign-in through the identity provider is not working: its client "
                          "secret cannot be read since this server's keys changed. Ask an admin "
                          "to enter it again in Settings → Sign-in.") from None
    return OAuth2Session(client_id=settings.client_id, client_secret=secret,
                         scope=SCOPES, redirect_uri=redirect_uri,
                         code_challenge_method="S256", default_timeout=TIMEOUT)


def start(settings, redirect_uri, next_url=None, now=None):
    """(the provider's sign-in address, the pending sign-in for the session to keep)."""
    pending = {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32),
               "verifier": secrets.token_urlsafe(48), "next": next_url,
               "at": int(now if now is not None else time.time())}
    with _client(settings, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            settings.authorization_endpoint, state=pending["state"], nonce=pending["nonce"],
            code_verifier=pending["verifier"])
    return url, pending


def check_answer(pending, params, now=None):
    """The code in the provider's answer (``params``: the callback's query), once ``state``
    shows it answers ``pending``, this browser's own sign-in, still recent; else SignOnError
    (with the provider's own words when it refused)."""
    state = params.get("state") or ""
    if pending is None or not hmac.compare_digest(state, pending["state"]):
        raise SignOnError("This sign-in answer is not for a sign-in started in this browser "
                          "(its state does not match), so it was refused. " + TRY_AGAIN)
    if params.get("error"):  # only now: anyone can make a link with words of their own
        said = (params.get("error_description") or params.get("error"))[:200]
        raise SignOnError(f"The identity provider did not sign you in: {said}. {TRY_AGAIN}")
    now = now if now is not None else time.time()
    if now - pending["at"] > PENDING_SECONDS:
        raise SignOnError("The sign-in took more than ten minutes at the identity provider, "
                          "so it was refused. " + TRY_AGAIN)
    code = params.get("code")
    if not code:
        raise SignOnError("The identity provider's answer has no code. " + TRY_AGAIN)
    return code


def finish(settings, pending, params, redirect_uri, now=None):
    """The checked claims of the ID token that the provider's answer leads to."""
    code = check_answer(pending, params, now)
    with _client(settings, redirect_uri) as client:
        try:
            token = client.fetch_token(settings.token_endpoint, code=code,
                                       code_verifier=pending["verifier"])
        except OAuthError as exc:
            said = (exc.description or exc.error or "refused")[:200]
            raise SignOnError(f"The identity provider refused the sign-in code ({said}): a "
                              "code works once, and only for the sign-in that asked for it. "
                              + TRY_AGAIN) from None
        except (requests.RequestException, ValueError) as exc:
            raise SignOnError(f"The identity provider's token endpoint did not answer "
                              f"({exc.__class__.__name__}). {TRY_AGAIN}") from None
    if not token.get("id_token"):
        raise SignOnError("The identity provider sent no ID token: check that the app's "
                          "scopes include openid.")
    return id_token_claims(settings, token, pending["nonce"], now)


def _key_set(settings, force=False):
    try:
        response = requests.get(settings.jwks_uri, timeout=TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        return KeySet.import_key_set(response.json())
    except (requests.RequestException, ValueError, JoseError) as exc:
        raise SignOnError(f"The identity provider's signing keys could not be read "
                          f"({exc.__class__.__name__}): ask an admin to check Settings → "
                          "Sign-in.") from None


def _decode(settings, id_token):
    registry = JWSRegistry(algorithms=settings.signing_algorithms or ["RS256"])
    try:
        return jwt.decode(id_token, key=_key_set(settings), registry=registry)
    except InvalidKeyIdError:
        pass  # the provider rotated its keys since: read them again, once
    return jwt.decode(id_token, key=_key_set(settings), registry=registry)


# What each failed check of the ID token means to the person, by the claim it is about.
CLAIM_WORDS = {
    "iss": "it was issued by another provider",
    "aud": "it was issued for another application",
    "azp": "it was issued for another application",
    "nonce": "it was made for another sign-in (its nonce does not match)",
    "exp": "it has expired (check this server's clock if this repeats)",
    "iat": "it is dated in the future (check this server's clock)",
    "nbf": "it is not valid yet (check this server's clock)",
    "at_hash": "it does not belong with the access token sent beside it",
}


def id_token_claims(settings, token, nonce, now=None):
    """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
    try:
        decoded = _decode(settings, token["id_token"])
        claims = CodeIDToken(decoded.claims, decoded.header, options={
            "iss": {"essential": True, "value": settings.issuer},
            "aud": {"essential": True, "value": settings.client_id},
            "sub": {"essential": True}, "exp": {"essential": True}},
            params={"nonce": nonce, "client_id": settings.client_id,
                    "access_token": token.get("access_token")})
        claims.validate(now=int(now) if now is not None else None, leeway=LEEWAY)
    except BadSignatureError:
        raise _refused("its signature is not the identity provider's") from None
    except ExpiredTokenError:
        raise _refused(CLAIM_WORDS["exp"]) from None
    except (InvalidClaimError, MissingClaimError) as exc:
        claim = getattr(exc, "claim", "")
        raise _refused(CLAIM_WORDS.get(claim, f"its {claim} claim is missing or wrong")) from None
    except JoseError:
        raise _refused("it could not be read as a signed token") from None
    return dict(claims)


def _refused(why):
    return SignOnError(f"The identity provider's ID token was refused: {why}. Nobody was "
                       f"signed in. {TRY_AGAIN}")
