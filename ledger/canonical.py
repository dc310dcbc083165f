"""Canonical event bytes: RFC 8785 (JSON Canonicalization Scheme).

Energy is an integer number of Wh; decimals, fractions and times travel as
strings; floats are refused, and so is any integer beyond 2**53 (JSON numbers
above it do not round-trip through every parser).
"""

import datetime as dt
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
    """Turn Python values into the JSON subset the ledger allows."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise EventEncodingError(f"integer {value} is beyond 2**53")
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
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise EventEncodingError(f"event keys must be strings, got {key!r}")
            out[key] = to_event_value(item)
        return out
    if isinstance(value, Sequence):
        return [to_event_value(item) for item in value]
    raise EventEncodingError(f"cannot put {type(value).__name__} in a ledger event")


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of an event (after `to_event_value`)."""
    return rfc8785.dumps(to_event_value(event))
