"""What people type that ends up in a message's header, subject or line."""
import unicodedata

# Line and paragraph separators end a line too, for some readers.
_LINE_BREAKING = {"Cc", "Zl", "Zp"}


def control_character(text, allowed=""):
    """How to name the first control character in ``text`` (one that is not in ``allowed``),
    e.g. "a line break (U+000A)"; None when there is none."""
    for char in text or "":
        if char in allowed or unicodedata.category(char) not in _LINE_BREAKING:
            continue
        kind = "a line break" if char in "\r\n\x0b\x0c\x85\u2028\u2029" else (
            "a tab" if char == "\t" else "a control character")
        return f"{kind} (U+{ord(char):04X})"
    return None
