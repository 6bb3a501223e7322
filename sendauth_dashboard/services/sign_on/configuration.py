"""Settings → Sign-in (admins): the identity provider (its issuer, read and checked through
discovery), this app's client id and secret there (the secret only encrypted, never shown
back), the email domains it may vouch for, the button's words, how roles come from its ID
token, and whether single sign-on is required (with the break-glass admins who may still use
a password)."""
import re
from dataclasses import dataclass

from sqlalchemy import select

from ...core import event_kinds as kinds
from ...core import event_log
from ...core.errors import ServiceError
from ...core.rows import default_row, get_or_create
from ...core.secrets import SecretUnreadable, decrypt, encrypt, mask
from ...core.text import control_character
from ...extensions import db
from ...models import ROLES, SignInSettings, User, utcnow
from . import discovery

DEFAULT_BUTTON_LABEL = "Sign in with single sign-on"
MAX_LABEL_LENGTH = 64
MAX_CLAIM_LENGTH = 64
MAX_CLIENT_ID_LENGTH = 255
MAX_SECRET_LENGTH = 1024
MAX_DOMAINS = 50
MAX_ROLE_MAP_LINES = 100
MAX_CLAIM_VALUE_LENGTH = 256
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CLAIM = re.compile(r"^[A-Za-z0-9_:.\-/]+$")


class SignInSettingsError(ServiceError):
    """A sign-in setting that cannot be saved; the message says how to fix it."""


def settings():
    """For reading: the saved row, or the defaults (single sign-on off)."""
    return db.session.get(SignInSettings, 1) or default_row(SignInSettings, id=1)


def is_configured(row=None):
    """Whether people can sign in through the provider: an issuer, its endpoints, a client."""
    row = row or settings()
    return bool(row.issuer and row.client_id and row.client_secret_ciphertext
                and row.authorization_endpoint)


def button_label(row=None):
    return (row or settings()).button_label or DEFAULT_BUTTON_LABEL


def client_secret(row=None):
    """The decrypted client secret, or None. SecretUnreadable when the keys changed."""
    ciphertext = (row or settings()).client_secret_ciphertext
    return None if ciphertext is None else decrypt(ciphertext)


def secret_mask(row=None):
    try:
        secret = client_secret(row)
    except SecretUnreadable as exc:
        return str(exc)
    return None if secret is None else mask(secret)


def parse_domains(text):
    """``example.com, corp.example.com`` (commas, spaces or lines) → sorted, lower-cased."""
    domains = sorted({d.strip().lower().lstrip("@") for d in re.split(r"[\s,;]+", text or "")
                      if d.strip()})
    for domain in domains:
        if not _DOMAIN.match(domain):
            raise SignInSettingsError(
                f"{domain[:80]!r} is not an email domain: write the part after the @, such as "
                "example.com, one per line or separated by commas.", "oidc_allowed_domains")
    if len(domains) > MAX_DOMAINS:
        raise SignInSettingsError(f"At most {MAX_DOMAINS} domains.", "oidc_allowed_domains")
    return domains


def parse_role_map(text):
    """``value = role`` lines (``#`` starts a comment) → {value: role}."""
    mapping = {}
    lines = [line.strip() for line in (text or "").splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if len(lines) > MAX_ROLE_MAP_LINES:
        raise SignInSettingsError(f"At most {MAX_ROLE_MAP_LINES} lines.", "oidc_role_map")
    for number, line in enumerate(lines, 1):
        value, equals, role = line.rpartition("=")
        value, role = value.strip(), role.strip().lower()
        if not equals or not value:
            raise SignInSettingsError(
                f"Line {number} ({line[:60]!r}) is not “value = role”: write the claim's value, "
                f"an equals sign and one of {', '.join(ROLES)}.", "oidc_role_map")
        if len(value) > MAX_CLAIM_VALUE_LENGTH:
            raise SignInSettingsError(f"Line {number}'s value is longer than "
                                      f"{MAX_CLAIM_VALUE_LENGTH} characters: no claim's value "
                                      "is that long.", "oidc_role_map")
        if role not in ROLES:
            raise SignInSettingsError(
                f"Line {number} maps to {role[:30]!r}, which is not a role: use one of "
                f"{', '.join(ROLES)}.", "oidc_role_map")
        mapping[value] = role
    return mapping


def role_map_text(mapping):
    return "\n".join(f"{value} = {role}" for value, role in (mapping or {}).items())


@dataclass
class Submitted:
    """What the admin typed on the page, as text (the secret empty: keep the stored one)."""

    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    allowed_domains: str = ""
    button_label: str = ""
    role_claim: str = ""
    role_map: str = ""
    require_sso: bool = False
    break_glass_ids: tuple = ()


# Each field as the form names it, the words for it, and the line breaks it may hold.
_TYPED = (("issuer", "oidc_issuer", "The issuer", ""),
          ("client_id", "oidc_client_id", "The client id", ""),
          ("client_secret", "oidc_client_secret", "The client secret", ""),
          ("allowed_domains", "oidc_allowed_domains", "The domains", "\r\n"),
          ("button_label", "oidc_button_label", "The button label", ""),
          ("role_claim", "oidc_role_claim", "The role claim", ""),
          ("role_map", "oidc_role_map", "The role map", "\r\n"))


def _check_characters(submitted):
    for name, field, words, breaks in _TYPED:
        bad = control_character(getattr(submitted, name) or "", allowed=breaks)
        if bad:
            raise SignInSettingsError(f"{words} contains {bad}: copy it again, without it.",
                                      field)


def _cleaned(submitted, current):
    """The new values of the row's columns; SignInSettingsError or DiscoveryError."""
    _check_characters(submitted)
    values = {"issuer": None, "authorization_endpoint": None, "token_endpoint": None,
              "jwks_uri": None, "signing_algorithms": []}
    issuer = (submitted.issuer or "").strip()
    if issuer:
        found = discovery.discover(discovery.normalize_issuer(issuer))
        values.update(found)
    client_id = (submitted.client_id or "").strip()
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise SignInSettingsError(f"The client id is at most {MAX_CLIENT_ID_LENGTH} "
                                  "characters: copy it again from the provider.", "oidc_client_id")
    values["client_id"] = client_id or None
    secret = (submitted.client_secret or "").strip()
    if len(secret) > MAX_SECRET_LENGTH:
        raise SignInSettingsError(f"The client secret is at most {MAX_SECRET_LENGTH} "
                                  "characters.", "oidc_client_secret")
    if secret:
        values["client_secret_ciphertext"] = encrypt(secret)
    values["allowed_domains"] = parse_domains(submitted.allowed_domains)
    label = " ".join((submitted.button_label or "").split())
    if len(label) > MAX_LABEL_LENGTH:
        raise SignInSettingsError(f"The button label is at most {MAX_LABEL_LENGTH} characters.",
                                  "oidc_button_label")
    values["button_label"] = label or None
    claim = (submitted.role_claim or "").strip()
    if claim and (len(claim) > MAX_CLAIM_LENGTH or not _CLAIM.match(claim)):
        raise SignInSettingsError("The role claim is the name of one claim of the ID token, "
                                  "such as groups or roles: letters, digits and _ : . - / only.",
                                  "oidc_role_claim")
    values["role_claim"] = claim or None
    values["role_map"] = parse_role_map(submitted.role_map)
    if values["role_map"] and not claim:
        raise SignInSettingsError("Name the claim the role map reads (such as groups), or "
                                  "empty the role map.", "oidc_role_claim")
    values["require_sso"] = bool(submitted.require_sso)
    _check_complete(values, current)
    return values


def _check_complete(values, current):
    if not values["issuer"]:
        if values["require_sso"]:
            raise SignInSettingsError("Enter the issuer first: without it nobody can sign in "
                                      "through the provider, so it cannot be required.",
                                      "oidc_issuer")
        return
    if not values["client_id"]:
        raise SignInSettingsError("Enter the client id the provider gave this app.",
                                  "oidc_client_id")
    if not values.get("client_secret_ciphertext") and not current.client_secret_ciphertext:
        raise SignInSettingsError("Enter the client secret the provider gave this app.",
                                  "oidc_client_secret")
    if not values["allowed_domains"]:
        raise SignInSettingsError(
            "Enter at least one email domain (e.g. example.com): the provider signs in only "
            "people whose verified email is at one of them.", "oidc_allowed_domains")


def active_admins():
    return db.session.scalars(select(User).where(User.role == "admin", User.active.is_(True))
                              .order_by(User.name, User.id)).all()


def _break_glass_changes(ids, require_sso):
    """Mark the admins ``ids`` break-glass and no one else; at least one when single sign-on
    is required. Returns the changes in words."""
    admins = active_admins()
    chosen = {admin.id for admin in admins if admin.id in set(ids)}
    if require_sso and not chosen:
        raise SignInSettingsError(
            "Mark at least one admin as break-glass: with single sign-on required, they are "
            "the only way in when the identity provider is down or misconfigured.",
            "break_glass")
    changes = []
    for admin in admins:
        if admin.break_glass != (admin.id in chosen):
            admin.break_glass = admin.id in chosen
            changes.append(f"{admin.email} {'is' if admin.break_glass else 'is no longer'} "
                           "a break-glass admin")
    return changes


# How each column's change is said in the audit log (never a secret's value).
_WORDS = {
    "issuer": "issuer", "client_id": "client id", "allowed_domains": "allowed email domains",
    "button_label": "button label", "role_claim": "role claim", "role_map": "role map",
}


# What the discovery document gave, kept with the settings.
_DISCOVERED = ("authorization_endpoint", "token_endpoint", "jwks_uri", "signing_algorithms")


def save(submitted, *, actor, now=None):
    """Check and save the settings (uncommitted); returns what changed, in words, or []."""
    current = settings()
    values = _cleaned(submitted, current)
    changes = _break_glass_changes(submitted.break_glass_ids, values["require_sso"])
    for column, words in _WORDS.items():
        if getattr(current, column) != values[column]:
            changes.append(f"{words} set to {_shown(values[column])}")
    if values["issuer"] and any(getattr(current, c) != values[c] for c in _DISCOVERED):
        changes.append("the provider's endpoints read from its discovery document")
    if values.get("client_secret_ciphertext"):
        changes.append("client secret replaced" if current.client_secret_ciphertext
                       else "client secret set")
    if not values["issuer"] and current.client_secret_ciphertext:
        values["client_secret_ciphertext"] = None
        changes.append("client secret removed")
    if current.require_sso != values["require_sso"]:
        changes.append("single sign-on required" if values["require_sso"]
                       else "passwords work again for everyone")
    if not changes:
        return []
    row = get_or_create(SignInSettings, 1, id=1, allowed_domains=[], role_map={},
                        signing_algorithms=[], require_sso=False)
    for column, value in values.items():
        setattr(row, column, value)
    row.updated_at = now or utcnow()
    row.updated_by_id = actor.id if actor else None
    event_log.record(kinds.SETTINGS_SIGN_IN_CHANGED, actor=actor, data={"changes": changes})
    return changes


def _shown(value):
    if value is None or value == [] or value == {}:
        return "nothing"
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, dict):
        return "; ".join(f"{k} → {v}" for k, v in value.items())
    return repr(value)
