"""Tokens handed to people in links and cookies: made here, stored only as a hash, and kept out
of logs.

Answer links (/authenticate/<token>), enrolment links (/enrol/<token>) and signed-in sessions
all use one kind: 32 random bytes, URL-safe, whose SHA-256 is what the database keeps.
"""
import hashlib
import re
import secrets

TOKEN_BYTES = 32

# /authenticate/<token> and /enrol/<token>, also URL-encoded inside a ?next= parameter.
_TOKEN_IN_PATH = re.compile(r"((?:authenticate|enrol)(?:/|%2F))[A-Za-z0-9_\-]+",
                            re.IGNORECASE)


def new_token():
    """A fresh token and the hash to store for it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def redact_tokens(text):
    """``text`` with every answer or enrolment token in a path replaced by ``[token]``."""
    return _TOKEN_IN_PATH.sub(r"\1[token]", text)
