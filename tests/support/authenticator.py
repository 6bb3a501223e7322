"""A software WebAuthn authenticator: what a browser and a security key together hand the server.

It makes real data (attestation "none", ES256 assertions over authenticator data and the client
data's hash) from WebAuthn options as the server sends them, so py_webauthn verifies it for real.
"""
import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def client_data(kind, challenge, origin):
    return json.dumps({"type": kind, "challenge": challenge, "origin": origin,
                       "crossOrigin": False}).encode()


class SoftAuthenticator:
    """One passkey: an EC P-256 key pair, its credential id and its signature counter."""

    def __init__(self, origin, rp_id=None, user_verified=True):
        self.origin = origin
        self.rp_id = rp_id or origin.split("://", 1)[1].split(":")[0]
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.user_verified = user_verified

    @property
    def id(self):
        return b64url(self.credential_id)

    def _auth_data(self, flags, attested=b""):
        return (hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags])
                + struct.pack(">I", self.sign_count) + attested)

    def _flags(self):
        return UP | (UV if self.user_verified else 0)

    def _cose_public_key(self):
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def create(self, options, origin=None):
        """The answer to navigator.credentials.create(options), as JSON-ready dict."""
        options = json.loads(options) if isinstance(options, str) else options
        attested = (bytes(16) + struct.pack(">H", len(self.credential_id))
                    + self.credential_id + self._cose_public_key())
        auth_data = self._auth_data(self._flags() | AT, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        data = client_data("webauthn.create", options["challenge"], origin or self.origin)
        return {
            "id": self.id, "rawId": self.id, "type": "public-key",
            "response": {"clientDataJSON": b64url(data),
                         "attestationObject": b64url(attestation),
                         "transports": ["internal"]},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }

    def get(self, options, origin=None, challenge=None):
        """The answer to navigator.credentials.get(options): the counter goes up each time."""
        options = json.loads(options) if isinstance(options, str) else options
        self.sign_count += 1
        auth_data = self._auth_data(self._flags())
        data = client_data("webauthn.get", challenge or options["challenge"],
                           origin or self.origin)
        signature = self.key.sign(auth_data + hashlib.sha256(data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {
            "id": self.id, "rawId": self.id, "type": "public-key",
            "response": {"clientDataJSON": b64url(data), "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature), "userHandle": None},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }
