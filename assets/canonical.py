"""The bytes a meter signs, and the leaves of a batch's Merkle tree.

An interval reading is the RFC 8785 (JCS) JSON of

    {"end": "<UTC>", "meter": "<serial>", "start": "<UTC>", "wh": <integer>}

and a cumulative counter reading the JCS JSON of

    {"counter_wh": <integer>, "meter": "<serial>", "time": "<UTC>"}

where every time is written as ledger.canonical writes it: UTC, microseconds, `Z`
(`2025-06-01T10:00:00.000000Z`). A batch's Merkle leaves are the interval bytes of its
readings in batch order (a counter reading's interval is [previous counter time, time)).

Serials contain only A-Z a-z 0-9 . _ : - and integers stay below 2**53, so the JCS output
is the plain concatenation below; tests check it byte for byte against ledger.canonical.
"""

import datetime as dt

from ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes, format_time

__all__ = [
    "MAX_SAFE_INTEGER",
    "counter_bytes",
    "format_time",
    "reading_bytes",
    "reading_bytes_reference",
]


def reading_bytes(serial: str, start: dt.datetime | str, end: dt.datetime | str, wh: int) -> bytes:
    """Canonical bytes of an interval reading (times as datetimes or format_time strings)."""
    if not isinstance(start, str):
        start = format_time(start)
    if not isinstance(end, str):
        end = format_time(end)
    return f'{{"end":"{end}","meter":"{serial}","start":"{start}","wh":{int(wh)}}}'.encode()


def counter_bytes(serial: str, time: dt.datetime | str, counter_wh: int) -> bytes:
    """Canonical bytes of a cumulative counter reading."""
    if not isinstance(time, str):
        time = format_time(time)
    return f'{{"counter_wh":{int(counter_wh)},"meter":"{serial}","time":"{time}"}}'.encode()


def reading_bytes_reference(serial: str, start: dt.datetime, end: dt.datetime, wh: int) -> bytes:
    """The same bytes through ledger.canonical (slow; for tests and documentation)."""
    return canonical_bytes({"meter": serial, "start": start, "end": end, "wh": wh})
