"""Parsing and normalising a row's values: energy as whole Wh, times as UTC instants."""

from __future__ import annotations

import datetime as dt

from assets.canonical import MAX_SAFE_INTEGER, format_time
from assets.ingest.records import UTC, DeviceInfo, RowError
from registry.datetimes import DATE_TIME_HINT, DATE_TIME_RE


def parse_wh(value, field_name: str) -> int:
    """A non-negative whole number of Wh below 2**53, from an int or a string of digits."""
    if isinstance(value, bool):
        raise RowError(field_name, "invalid_integer", "Must be an integer number of Wh.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        # int() refuses texts of over 4,300 digits (ValueError): anything past 16 is too large
        number = int(value) if len(value.lstrip("0")) <= 16 else MAX_SAFE_INTEGER
    elif (
        isinstance(value, str) and value[:1] == "-" and value[1:].isascii() and value[1:].isdigit()
    ):
        number = -1
    else:
        raise RowError(field_name, "invalid_integer", f"{value!r} is not an integer number of Wh.")
    if number < 0:
        raise RowError(field_name, "negative", "Energy cannot be negative.")
    if number >= MAX_SAFE_INTEGER:
        raise RowError(field_name, "too_large", "Must be below 2**53.")
    return number


def check_aligned(epoch: int, device: DeviceInfo, field_name: str) -> None:
    """Refuse a time (epoch seconds, -1 if not whole) off the device's interval grid."""
    if epoch < 0 or epoch % device.interval_seconds:
        raise RowError(
            field_name,
            "not_aligned",
            f"Must be aligned to the device's {device.interval_seconds // 60}-minute "
            "interval (UTC).",
        )


class TimeParser:
    """Parses row times once per distinct text: batches repeat the same instants."""

    def __init__(self) -> None:
        # input text -> (instant, canonical text, epoch seconds or -1 if not whole seconds)
        self._times: dict[str, tuple[dt.datetime, str, int] | RowError] = {}
        self._canonical: dict[dt.datetime, str] = {}

    def time(self, value, field_name: str) -> tuple[dt.datetime, str, int]:
        """(UTC instant, canonical text, epoch seconds or -1), or RowError on `field_name`."""
        cached = self._times.get(value) if isinstance(value, str) else None
        if cached is None:
            cached = self._parse(value)
            if isinstance(value, str):
                self._times[value] = cached
        if isinstance(cached, RowError):
            raise RowError(field_name, cached.code, cached.message)
        return cached

    def _parse(self, value) -> tuple[dt.datetime, str, int] | RowError:
        if not isinstance(value, str):
            return RowError(None, "invalid_time", "Give an ISO 8601 time with a UTC offset.")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return RowError(None, "invalid_time", f"{value!r} is not an ISO 8601 time.")
        if parsed.tzinfo is None:
            return RowError(None, "naive_time", "The time needs a UTC offset or 'Z'.")
        if not DATE_TIME_RE.fullmatch(value):  # what the schema says, and in range in UTC
            return RowError(None, "invalid_time", DATE_TIME_HINT)
        parsed = parsed.astimezone(UTC)
        epoch = -1 if parsed.microsecond else int(parsed.timestamp())
        return parsed, self.canonical(parsed), epoch

    def canonical(self, moment: dt.datetime) -> str:
        """format_time(moment), cached."""
        text = self._canonical.get(moment)
        if text is None:
            text = self._canonical[moment] = format_time(moment)
        return text
