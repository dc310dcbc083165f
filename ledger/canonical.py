"""Canonical event bytes: RFC 8785 (JSON Canonicalization Scheme).

Energy is an integer number of Wh; decimals, fractions and times travel as
strings; floats are refused, and so is any integer of magnitude 2**53 or more (JSON
numbers from there on do not round-trip through every parser; RFC 8785 refuses them).

Within that subset (null, booleans, strings, safe integers, arrays, objects) RFC 8785 is
what the standard library's C encoder writes with no spaces and no ASCII escaping, once
every object's members are in RFC 8785's order (by UTF-16 code units, which is code-point
order unless a key mixes characters above U+FFFF with ones from U+E000): the escapes are
the same (quote, backslash, b f n r t, other controls as lowercase u00xx) and so
are the integers. `to_event_value` puts members in that order and `canonical_bytes` writes
with `json`, about 6x faster than the pure-Python `rfc8785` package, which stays the
reference: tests/ledger/test_canonical.py checks both give the same bytes on generated
values, and a string `json` cannot write as UTF-8 (a lone surrogate) goes to `rfc8785`,
which refuses it with its own error, as before.
"""

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53


class EventEncodingError(TypeError):
    """A value cannot be placed in a canonical ledger event."""


def format_time(value: dt.datetime) -> str:
    """UTC, microsecond precision, `Z` suffix: one spelling per instant."""
    if value.tzinfo is None:
        raise EventEncodingError(f"naive datetime {value!r} in a ledger event")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_event_value(value: Any) -> Any:
    """Turn Python values into the JSON subset the ledger allows.

    The exact built-in types come first, by `type()`: an event of a few hundred objects
    is tens of thousands of calls, and the ABC checks (`Mapping`, `Sequence`) of the
    general path cost more than the rest of the walk. Subclasses (choices, other
    mappings) take the general path."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -MAX_SAFE_INTEGER < value < MAX_SAFE_INTEGER:
            return value
        raise EventEncodingError(f"integer {value} is not below 2**53 in magnitude")
    if kind is dict:
        return _members(value)
    if kind is list or kind is tuple:
        return [to_event_value(item) for item in value]
    return _other_value(value)


def _other_value(value: Any) -> Any:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) >= MAX_SAFE_INTEGER:
            raise EventEncodingError(f"integer {value} is not below 2**53 in magnitude")
        return value
    if isinstance(value, float):
        raise EventEncodingError("floats are not allowed in ledger events; use Decimal or str")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        raise EventEncodingError("bytes must be encoded (base64 or hex) before going in an event")
    if isinstance(value, Mapping):
        return _members(value)
    if isinstance(value, Sequence):
        return [to_event_value(item) for item in value]
    raise EventEncodingError(f"cannot put {type(value).__name__} in a ledger event")


def _members(value: Mapping) -> dict:
    """An object's members in RFC 8785's order, each value converted."""
    keys = list(value)
    for key in keys:
        if not isinstance(key, str):
            raise EventEncodingError(f"event keys must be strings, got {key!r}")
    keys.sort(key=None if all(key.isascii() for key in keys) else _utf16)
    return {key: to_event_value(value[key]) for key in keys}


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of an event (after `to_event_value`)."""
    value = to_event_value(event)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return rfc8785.dumps(value)  # refuses what is not UTF-8, with its own error
