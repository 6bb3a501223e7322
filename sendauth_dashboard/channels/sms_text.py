"""SMS text as carriers and Twilio count it: GSM-7 or UCS-2, and segments.

A message whose every character is in the GSM 03.38 alphabet (the basic set, and the
extension table whose characters take two septets) goes as GSM-7: 160 septets in one
segment, 153 per segment when concatenated. One character outside it makes the whole message
UCS-2: 70 UTF-16 code units in one segment, 67 per segment. A character is never split
between segments. ``gsm_friendly`` replaces typographic characters (curly quotes, dashes,
the ellipsis, odd spaces) and accents GSM-7 lacks with what it has, where the meaning stays.
"""
import unicodedata
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
# Sent as an escape and the character: two septets each.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
SINGLE, CONCATENATED = {"GSM-7": 160, "UCS-2": 70}, {"GSM-7": 153, "UCS-2": 67}
_LOOKALIKES = str.maketrans({
    **dict.fromkeys("‘’‚‛′`´", "'"), **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"), "…": "...", "•": "-", "\t": " ",
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                    "\u200a\u202f\u205f\u3000", " "),
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff", ""),
})


@dataclass(frozen=True)
class Segments:
    encoding: str
    count: int

    def __str__(self):
        return f"{self.count} segment{'' if self.count == 1 else 's'}, {self.encoding}"


def is_gsm7(char):
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def gsm_friendly(text):
    """``text`` with characters GSM-7 lacks replaced by GSM-7 ones that read the same
    (“quotes” → "quotes", – → -, … → ..., ł stays, ë → e); what has no such twin stays."""
    text = text.translate(_LOOKALIKES)
    return "".join(char if is_gsm7(char) else _without_accent(char) for char in text)


def _without_accent(char):
    base = "".join(c for c in unicodedata.normalize("NFD", char)
                   if not unicodedata.combining(c))
    return base if base and all(is_gsm7(c) for c in base) else char


def encoding(text):
    return "GSM-7" if all(is_gsm7(char) for char in text) else "UCS-2"


def segments(text):
    """How many segments the text costs, as Twilio counts them."""
    kind = encoding(text)
    if kind == "GSM-7":
        units = [2 if char in GSM7_EXTENSION else 1 for char in text]
    else:
        units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    if sum(units) <= SINGLE[kind]:
        return Segments(kind, 1)
    count, room = 1, CONCATENATED[kind]
    for size in units:
        if size > room:
            count, room = count + 1, CONCATENATED[kind]
        room -= size
    return Segments(kind, count)
