"""JSON that arrives from outside (a passkey answer in a form field, the client data inside it,
a provider's webhook), read within bounds: at most so many characters and so many levels of
nesting, checked before the parser runs.

Python's parser recurses once per level: 3,000 nested ``[`` raise RecursionError, a 500 that a
webhook sender retries for days. Counting the levels first (outside strings) refuses such a
text with a JsonError, which says what was wrong, as any other that is not JSON.
"""
import json
import re

from .errors import ServiceError

# Deeper than any JSON we take in (a WebAuthn credential nests 3 levels; a webhook about 5).
MAX_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JsonError(ServiceError):
    """Not JSON within the bounds; the message says which way."""


def parse(text, *, max_chars, what="It", max_depth=MAX_DEPTH):
    """``text`` (str, or UTF-8 bytes) as JSON, or JsonError: larger than ``max_chars``,
    nested deeper than ``max_depth``, or not JSON. ``what`` names it in the messages."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonError(f"{what} is not JSON: it is not UTF-8 text.") from None
    if len(text) > max_chars:
        raise JsonError(f"{what} is too large: at most {max_chars:,} characters; "
                        f"it has {len(text):,}.")
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > max_depth:
        raise JsonError(f"{what} nests deeper than {max_depth} levels, which no answer we "
                        "expect does.")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise JsonError(f"{what} is not JSON.") from None
