"""The identity provider's address and its discovery document
(``/.well-known/openid-configuration``), read and checked when an admin saves the settings:
what is wrong is said in words an admin can act on."""
import ipaddress
from urllib.parse import urlsplit

import requests

from ...core.errors import ServiceError

# Seconds to wait for the provider (discovery, keys, token): a sign-in page must not hang.
TIMEOUT = 10
MAX_URL_LENGTH = 2048


class DiscoveryError(ServiceError):
    """The issuer or its discovery document is not usable; the message says how to fix it."""


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url, what, field="oidc_issuer"):
    """``url`` if it is https:// (or http:// on this machine's loopback, for a local provider),
    else DiscoveryError naming ``what``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if not host or parts.scheme not in ("https", "http") or len(url) > MAX_URL_LENGTH:
        raise DiscoveryError(f"The {what} must be a full address starting with https://, "
                             "e.g. https://login.microsoftonline.com/<tenant id>/v2.0.", field)
    if parts.scheme == "http" and not is_loopback(host):
        raise DiscoveryError(f"The {what} must start with https://: http:// is only for a "
                             "provider on this machine (localhost or 127.0.0.1).", field)
    if parts.query or parts.fragment:
        raise DiscoveryError(f"The {what} has no ? or # part: remove it.", field)
    return url


def normalize_issuer(issuer):
    issuer = (issuer or "").strip().rstrip("/")
    if not issuer:
        raise DiscoveryError("Enter the issuer: the address of your identity provider.",
                             "oidc_issuer")
    return check_url(issuer, "issuer")


# What the settings keep from the document: (its key, what it is, in words).
ENDPOINTS = (("authorization_endpoint", "authorization endpoint"),
             ("token_endpoint", "token endpoint"),
             ("jwks_uri", "key set (jwks_uri)"))


def discover(issuer):
    """The checked discovery document of ``issuer`` (already normalized): its issuer is this
    one, it has the endpoints the code flow needs, each https:// (or loopback), and it offers
    the code flow and a signing algorithm other than none. Raises DiscoveryError."""
    address = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(address, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise DiscoveryError(f"The issuer did not answer at {address} "
                             f"({exc.__class__.__name__}): check the address, and that this "
                             "server can reach it.", "oidc_issuer") from None
    if response.status_code != 200:
        raise DiscoveryError(f"{address} answered HTTP {response.status_code}, not the "
                             "discovery document: check the issuer (for Entra ID it ends in "
                             "/v2.0).", "oidc_issuer")
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise DiscoveryError(f"{address} is not a JSON discovery document: check the issuer.",
                             "oidc_issuer")
    return _checked(issuer, document)


def _checked(issuer, document):
    said = str(document.get("issuer") or "")
    if said.rstrip("/") != issuer:
        raise DiscoveryError(f"The discovery document names the issuer {said[:200]!r}, not "
                             f"{issuer!r}: enter exactly the issuer it names.", "oidc_issuer")
    for key, words in ENDPOINTS:
        value = document.get(key)
        if not isinstance(value, str) or not value:
            raise DiscoveryError(f"The discovery document has no {words}: this provider "
                                 "cannot be used for sign-in.", "oidc_issuer")
        check_url(value, f"{words} in the discovery document")
    types = document.get("response_types_supported") or ["code"]
    if "code" not in types:
        raise DiscoveryError("The provider does not offer the authorization code flow "
                             "(response type code), which sign-in uses.", "oidc_issuer")
    algorithms = [a for a in document.get("id_token_signing_alg_values_supported") or ["RS256"]
                  if isinstance(a, str) and a.lower() != "none"]
    if not algorithms:
        raise DiscoveryError("The provider signs ID tokens with no algorithm ('none'): it "
                             "cannot be trusted for sign-in.", "oidc_issuer")
    return {"issuer": said, **{key: document[key] for key, _ in ENDPOINTS},
            "signing_algorithms": algorithms}
