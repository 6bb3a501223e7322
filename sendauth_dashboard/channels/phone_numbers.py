"""Phone numbers in E.164, the one form SMS providers take: ``+14155550123``."""
import re

_E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")
# What people type between digits and what copying from a contact card brings along.
_SEPARATORS = re.compile(r"[\s().\-\u00a0]")


def clean_phone_number(raw, label="phone number"):
    """The number in E.164, or None when left empty; ValueError says what is wrong."""
    number = _SEPARATORS.sub("", raw or "")
    if not number:
        return None
    if _E164_RE.fullmatch(number):
        return number
    if number.startswith("00"):
        raise ValueError(f"Write the {label} with + instead of 00 in front, like +14155550123.")
    if not number.startswith("+"):
        raise ValueError(f"Write the {label} in international format: + and the country code, "
                         "then the number, like +14155550123.")
    digits = number[1:]
    if not digits.isdigit():
        raise ValueError(f"A {label} has only digits after the +, like +14155550123.")
    if digits.startswith("0"):
        raise ValueError("After the + comes the country code, which never starts with 0: "
                         "+1 for the US, +44 for the UK.")
    raise ValueError(f"A {label} has 7 to 15 digits after the +; this one has {len(digits)}.")
