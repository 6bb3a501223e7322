"""Stored secrets: encrypted at rest with Fernet, shown to people only as a mask."""
import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import ConfigurationError
from ..runtime import runtime

MASK_CHAR = "\u2022"
_HKDF_INFO = b"sendauth-dashboard stored secrets v1"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: the encryption key or secret key has changed."""


def derive_key(secret_key):
    """A Fernet key derived from the app's secret key, for when no ENCRYPTION_KEY is set."""
    material = secret_key.encode() if isinstance(secret_key, str) else secret_key
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(material)
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    def __init__(self, fernet_key):
        self._fernet = Fernet(fernet_key)

    def encrypt(self, plaintext):
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext):
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "A stored secret cannot be decrypted: SENDAUTH_ENCRYPTION_KEY or "
                "SENDAUTH_SECRET_KEY changed since it was saved. Enter it again."
            ) from None


def secret_box_for(config):
    """The app's SecretBox; ConfigurationError when ENCRYPTION_KEY is not a Fernet key."""
    key = config.get("ENCRYPTION_KEY") or derive_key(config["SECRET_KEY"])
    try:
        return SecretBox(key)
    except ValueError:
        raise ConfigurationError(
            "SENDAUTH_ENCRYPTION_KEY is not a valid key: it must be 32 url-safe base64-encoded "
            "bytes, as made by `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`. Or leave it unset to derive one from "
            "SENDAUTH_SECRET_KEY."
        ) from None


def secret_box():
    return runtime().secret_box


def encrypt(plaintext):
    return secret_box().encrypt(plaintext)


def decrypt(ciphertext):
    return secret_box().decrypt(ciphertext)


def redact(text, secret):
    """``text`` with every copy of ``secret`` masked: for error text that might echo a key."""
    if not text or not secret:
        return text
    return text.replace(secret, mask(secret))


def mask(secret, visible=4):
    """``••••…AB12``: as long as the secret, only its last few characters shown."""
    if len(secret) <= visible:
        return MASK_CHAR * len(secret)
    return MASK_CHAR * (len(secret) - visible) + secret[-visible:]
