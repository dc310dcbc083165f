"""Field rules shared by the services, the admin forms and the API: EIC codes, time zones,
co-owner shares, Ed25519 keys and signatures."""

import base64
import binascii
import re
import zoneinfo
from fractions import Fraction

from registry.text_patterns import SPACE

EIC_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"
EIC_FORMAT = re.compile(r"^[0-9A-Z-]{16}$")
SERIAL_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
# ASCII digits and the spaces str.strip() removes, spelt out: Python's `\d` and `\s` take
# other sets than the schema's (ECMA-262's).
_S = f"[{SPACE}]"
SHARE_FORMAT = re.compile(
    rf"^{_S}*([0-9]{{1,9}}){_S}*(?:/{_S}*([0-9]{{1,9}}){_S}*)?$|^{_S}*([0-9]?\.[0-9]{{1,9}}){_S}*$"
)

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def eic_check_character(first15: str) -> str:
    """The EIC check character for the first 15 characters (ENTSO-E EIC reference manual).

    Characters count 0-9, A-Z as 10-35 and '-' as 36; position i (1-based) weighs 17 - i;
    the check value is 36 - ((sum - 1) mod 37). A value of 36 ('-') makes the code invalid.
    """
    total = sum(EIC_ALPHABET.index(char) * (16 - i) for i, char in enumerate(first15))
    return EIC_ALPHABET[36 - ((total - 1) % 37)]


def eic_problem(code: str) -> str | None:
    """Why `code` is not a valid EIC code, or None."""
    if not EIC_FORMAT.fullmatch(code):
        return "An EIC code is 16 characters of 0-9, A-Z and '-'."
    expected = eic_check_character(code[:15])
    if expected == "-":
        return "No valid EIC code starts with these 15 characters (its check character is '-')."
    if code[15] != expected:
        return f"Wrong EIC check character {code[15]!r}; expected {expected!r}."
    return None


def time_zone_problem(name: str) -> str | None:
    """Why `name` is not an IANA time zone, or None."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        return "Give an IANA time zone such as 'Europe/Berlin'."
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"Unknown IANA time zone {name!r}."
    return None


def parse_share(value: object) -> Fraction:
    """A co-owner share from "1/3", "0.25", "1" or an integer; floats are refused (inexact)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("Give the share as a string such as '1/3' or '0.25'.")
    match = SHARE_FORMAT.fullmatch(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a share such as '1/3' or '0.25'.")
    if match.group(3) is not None:
        share = Fraction(match.group(3))
    else:
        denominator = int(match.group(2) or 1)
        if denominator == 0:
            raise ValueError("A share's denominator cannot be 0.")
        share = Fraction(int(match.group(1)), denominator)
    if not 0 < share <= 1:
        raise ValueError(f"A share must be above 0 and at most 1, not {share}.")
    return share


def _decode(value: str | bytes, size: int) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    else:
        text = value.strip()
        if len(text) == 2 * size:
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
        else:
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
    if len(raw) != size:
        raise ValueError(f"expected {size} bytes, base64 or hex encoded")
    return raw


def decode_public_key(value: str | bytes) -> bytes:
    """32 raw bytes of an Ed25519 public key given as base64, hex or bytes (ValueError if not)."""
    return _decode(value, PUBLIC_KEY_SIZE)


def decode_signature(value: str | bytes) -> bytes:
    """64 raw bytes of an Ed25519 signature given as base64, hex or bytes (ValueError if not)."""
    return _decode(value, SIGNATURE_SIZE)


def b64(raw: bytes) -> str:
    return base64.b64encode(bytes(raw)).decode("ascii")
