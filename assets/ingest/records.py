"""What the ingest phases pass along: a row's error, the meter and device facts, entries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

UTC = dt.UTC

# Row error codes whose cause is stored state rather than the row itself: a batch that
# fails only on these is a conflict (HTTP 409), otherwise it is invalid input (400).
CONFLICT_CODES = frozenset({"reading_conflict", "held_reading_conflict", "counter_conflict"})


class RowError(Exception):
    """One row's problem: (field, code, message)."""

    def __init__(self, field: str | None, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


@dataclass(slots=True)
class DeviceInfo:
    """What the rows need of a device, read once per batch (status refreshed under lock)."""

    id: int
    organisation_id: int
    status: str
    interval: dt.timedelta
    interval_seconds: int
    max_wh: int
    require_signed: bool
    permitted: bool


@dataclass(slots=True)
class MeterInfo:
    """What the rows need of a meter: its window, its keys and a fingerprint to re-check."""

    id: int
    serial: str
    device: DeviceInfo
    status: str
    installed_at: dt.datetime | None
    removed_at: dt.datetime | None
    keys: list[tuple[dt.datetime, dt.datetime | None, bytes]]
    fingerprint: tuple


@dataclass(slots=True)
class Entry:
    """A row that passed phase 1 (an interval reading, or a counter value)."""

    row: int
    meter: MeterInfo
    start: dt.datetime | None  # None for a counter until phase 2 derives it
    end: dt.datetime
    wh: int | None
    signature: bytes | None
    counter_wh: int | None = None
    message: bytes | None = None  # the interval's canonical bytes, once computed
    flags: tuple[str, ...] = ()
    error: RowError | None = None
    baseline: bool = False
    duplicate: bool = False


@dataclass
class Outcome:
    """What phase 2 decided: rows to store (in batch order), duplicates, errors."""

    accepted: list[Entry] = field(default_factory=list)
    duplicates: int = 0
    baselines: int = 0
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    counter_updates: dict[int, tuple[dt.datetime, int]] = field(default_factory=dict)
    review: dict[str, int] = field(default_factory=dict)
