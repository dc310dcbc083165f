"""Validation of a batch of readings, row by row, in two phases.

Phase 1 (`ReadingIngest.add`, no transaction, no locks): parse each raw row, look up its
meter and device once per serial, check everything a row can show on its own (times,
alignment, future, meter window, device status, signature present and well formed) and
hand signature checks to a thread pool (PyNaCl releases the GIL, so verification runs on
every core while parsing, and then phase 2 and the insert, continue);
`wait_for_signatures` collects the verdicts.

Phase 2 (`ReadingIngest.resolve`, inside the writing transaction, after the devices and
meters are locked): compare with what is stored (one range query per device over accepted
and held readings), turn counters into intervals from the meter's locked counter state,
find duplicates and overlaps inside the batch, and flag rows for review.

Every row keeps its number from the upload, so errors point at the row the user sent.
"""

from __future__ import annotations

import binascii
import datetime as dt
import os
from binascii import a2b_base64
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from threading import Lock

from django.conf import settings
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from accounts.models import User
from accounts.permissions import user_can_act_for
from assets.canonical import MAX_SAFE_INTEGER, counter_bytes, format_time, reading_bytes
from assets.errors import ReadingsMalformed
from assets.models import Device, Meter, MeterKey, PendingReading, Reading
from assets.validation import (
    SERIAL_FORMAT,
    SIGNATURE_SIZE,
    decode_public_key,
    decode_signature,
)

UTC = dt.UTC
VERIFY_CHUNK = 2048
MAX_METERS = 10_000  # distinct serials looked up per batch (one query each)

# Row error codes whose cause is stored state rather than the row itself: a batch that
# fails only on these is a conflict (HTTP 409), otherwise it is invalid input (400).
CONFLICT_CODES = frozenset({"reading_conflict", "held_reading_conflict", "counter_conflict"})

REVIEW_MESSAGES = {
    "over_capacity": "more energy than capacity x duration x the review margin",
    "backdated": "starts before the backdating limit",
}


class RowError(Exception):
    """One row's problem: (field, code, message)."""

    def __init__(self, field: str | None, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


@dataclass(slots=True)
class DeviceInfo:
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


_pool: ThreadPoolExecutor | None = None
_pool_lock = Lock()


def _verify_pool() -> ThreadPoolExecutor:
    global _pool  # one process-wide pool, created on first use
    with _pool_lock:
        if _pool is None:
            workers = settings.READINGS_VERIFY_THREADS or os.cpu_count() or 1
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ed25519")
        return _pool


def verify_many(items: list[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    """Indices of the (index, message, signature, public key) items that do not verify."""
    bad = []
    for index, message, signature, public_key in items:
        try:
            crypto_sign_open(signature + message, public_key)
        except BadSignatureError:
            bad.append(index)
    return bad


def _parse_int(value, field_name: str) -> int:
    if isinstance(value, bool):
        raise RowError(field_name, "invalid_integer", "Must be an integer number of Wh.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
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


class ReadingIngest:
    """Validates one submission; see the module docstring for the two phases."""

    def __init__(
        self,
        *,
        actor: User,
        now: dt.datetime,
        device_id: int | None = None,
        max_errors: int | None = None,
    ) -> None:
        self.actor = actor
        self.now = now
        self.only_device_id = device_id
        self.max_errors = max_errors or settings.READINGS_MAX_ERRORS_REPORTED
        self.entries: list[Entry] = []
        self.errors: list[tuple[int, RowError]] = []
        self.rows = 0
        self.organisation_id: int | None = None
        self._meters: dict[str, MeterInfo | RowError] = {}
        self._devices: dict[int, DeviceInfo] = {}
        # input text -> (instant, canonical text, epoch seconds or -1 if not whole seconds)
        self._times: dict[str, tuple[dt.datetime, str, int] | RowError] = {}
        self._canonical: dict[dt.datetime, str] = {}
        self._verify_batch: list[tuple[int, bytes, bytes, bytes]] = []
        self._futures: list[Future] = []
        margin = Decimal(str(settings.READINGS_CAPACITY_MARGIN))
        self._margin = margin
        limit_days = settings.READINGS_BACKDATE_LIMIT_DAYS
        self._backdate_before = now - dt.timedelta(days=limit_days)
        self._max_rows = settings.READINGS_BATCH_MAX_ROWS

    # -- phase 1 -------------------------------------------------------------------------

    def consume(self, rows: Iterable) -> None:
        for raw in rows:
            self.add(raw)
        self._flush_verify()

    def add(self, raw) -> None:
        row, is_counter, serial, a, b, value, signature, shape_error = raw
        self.rows += 1
        if self.rows > self._max_rows:
            raise ReadingsMalformed(
                f"At most {self._max_rows} rows per batch.", max_rows=self._max_rows
            )
        try:
            if shape_error is not None:
                raise RowError(*shape_error)
            meter = self._meter(serial)
            device = meter.device
            if is_counter:
                entry = self._counter_entry(row, meter, a, value)
            else:
                entry = self._interval_entry(row, meter, a, b, value)
            if meter.installed_at is not None and (entry.start or entry.end) < meter.installed_at:
                raise RowError(None, "before_meter_installed", "Before the meter was installed.")
            if meter.removed_at is not None and entry.end > meter.removed_at:
                raise RowError(None, "after_meter_removed", "After the meter was removed.")
            if device.status not in (Device.Status.APPROVED, Device.Status.ACTIVE):
                raise RowError(
                    "meter",
                    "device_not_active",
                    f"The meter's device is {device.status}; readings need an approved or "
                    "active device.",
                )
            if signature is not None:
                self._queue_signature(entry, signature, is_counter)
            elif device.require_signed:
                raise RowError(
                    "signature", "signature_required", "The device's policy requires signatures."
                )
        except RowError as error:
            self.errors.append((row, error))
            return
        self.entries.append(entry)

    def _meter(self, serial) -> MeterInfo:
        found = self._meters.get(serial) if isinstance(serial, str) else None
        if found is None:
            found = self._load_meter(serial)
            if isinstance(serial, str):
                self._meters[serial] = found
        if isinstance(found, RowError):
            raise found
        return found

    def _load_meter(self, serial) -> MeterInfo | RowError:
        if not isinstance(serial, str) or not SERIAL_FORMAT.match(serial):
            return RowError("meter", "invalid_serial", f"{serial!r} is not a meter serial.")
        if len(self._meters) >= MAX_METERS:
            return RowError("meter", "too_many_meters", f"At most {MAX_METERS} meters per batch.")
        meter = (
            Meter.objects.select_related("device__organisation")
            .filter(serial=serial)
            .only(
                "id",
                "serial",
                "status",
                "installed_at",
                "removed_at",
                "device__id",
                "device__status",
                "device__interval_minutes",
                "device__capacity_w",
                "device__require_signed_readings",
                "device__organisation__id",
                "device__organisation__status",
            )
            .first()
        )
        device = None if meter is None else self._device_info(meter.device)
        if device is None or not device.permitted:
            # Another organisation's meter reads as unknown, so serials cannot be probed.
            return RowError(
                "meter",
                "unknown_meter",
                f"No meter with serial {serial!r} on a device you act for.",
            )
        if self.only_device_id is not None and device.id != self.only_device_id:
            return RowError("meter", "meter_not_of_device", "The meter is not of this device.")
        if self.organisation_id is None:
            self.organisation_id = device.organisation_id
        elif self.organisation_id != device.organisation_id:
            return RowError(
                "meter",
                "mixed_organisations",
                "A batch holds readings of one organisation's devices only.",
            )
        keys = list(
            MeterKey.objects.filter(meter_id=meter.pk)
            .order_by("valid_from")
            .values_list("valid_from", "valid_to", "public_key")
        )
        return MeterInfo(
            id=meter.pk,
            serial=meter.serial,
            device=device,
            status=meter.status,
            installed_at=meter.installed_at,
            removed_at=meter.removed_at,
            keys=[(start, end, decode_public_key(key)) for start, end, key in keys],
            fingerprint=_meter_fingerprint(meter.status, meter.removed_at, keys),
        )

    def _device_info(self, device: Device) -> DeviceInfo:
        info = self._devices.get(device.pk)
        if info is None:
            seconds = device.interval_minutes * 60
            max_wh = int(Decimal(device.capacity_w) * seconds * self._margin / 3600)
            info = DeviceInfo(
                id=device.pk,
                organisation_id=device.organisation_id,
                status=device.status,
                interval=dt.timedelta(seconds=seconds),
                interval_seconds=seconds,
                max_wh=max_wh,
                require_signed=device.require_signed_readings,
                permitted=user_can_act_for(self.actor, device.organisation),
            )
            self._devices[device.pk] = info
        return info

    def _time(self, value, field_name: str) -> tuple[dt.datetime, str, int]:
        cached = self._times.get(value) if isinstance(value, str) else None
        if cached is None:
            cached = self._parse_time(value)
            if isinstance(value, str):
                self._times[value] = cached
        if isinstance(cached, RowError):
            raise RowError(field_name, cached.code, cached.message)
        return cached

    def _parse_time(self, value) -> tuple[dt.datetime, str, int] | RowError:
        if not isinstance(value, str):
            return RowError(None, "invalid_time", "Give an ISO 8601 time with a UTC offset.")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return RowError(None, "invalid_time", f"{value!r} is not an ISO 8601 time.")
        if parsed.tzinfo is None:
            return RowError(None, "naive_time", "The time needs a UTC offset or 'Z'.")
        parsed = parsed.astimezone(UTC)
        epoch = -1 if parsed.microsecond else int(parsed.timestamp())
        return parsed, self.canonical_time(parsed), epoch

    def canonical_time(self, moment: dt.datetime) -> str:
        """format_time(moment), cached: batches repeat the same instants across meters."""
        text = self._canonical.get(moment)
        if text is None:
            text = self._canonical[moment] = format_time(moment)
        return text

    @staticmethod
    def _check_aligned(epoch: int, device: DeviceInfo, field_name: str) -> None:
        if epoch < 0 or epoch % device.interval_seconds:
            raise RowError(
                field_name,
                "not_aligned",
                f"Must be aligned to the device's {device.interval_seconds // 60}-minute "
                "interval (UTC).",
            )

    def _interval_entry(self, row: int, meter: MeterInfo, a, b, value) -> Entry:
        device = meter.device
        start, start_text, start_epoch = self._time(a, "start")
        end, end_text, _ = self._time(b, "end")
        wh = _parse_int(value, "wh")
        if end <= start:
            raise RowError("end", "end_not_after_start", "The end must be after the start.")
        self._check_aligned(start_epoch, device, "start")
        if end - start != device.interval:
            raise RowError(
                "end",
                "wrong_duration",
                f"A reading covers exactly the device's interval of "
                f"{device.interval_seconds // 60} minutes.",
            )
        if end > self.now:
            raise RowError("end", "in_future", "The reading ends in the future.")
        flags = ()
        if wh > device.max_wh:
            flags = ("over_capacity",)
        if start < self._backdate_before:
            flags = (*flags, "backdated")
        return Entry(
            row=row,
            meter=meter,
            start=start,
            end=end,
            wh=wh,
            signature=None,
            message=reading_bytes(meter.serial, start_text, end_text, wh),
            flags=flags,
        )

    def _counter_entry(self, row: int, meter: MeterInfo, a, value) -> Entry:
        time, _text, epoch = self._time(a, "time")
        counter = _parse_int(value, "counter_wh")
        self._check_aligned(epoch, meter.device, "time")
        if time > self.now:
            raise RowError("time", "in_future", "The counter reading is in the future.")
        return Entry(
            row=row, meter=meter, start=None, end=time, wh=None, signature=None, counter_wh=counter
        )

    def _queue_signature(self, entry: Entry, signature, is_counter: bool) -> None:
        try:
            if isinstance(signature, str) and len(signature) == 88:
                raw = a2b_base64(signature, strict_mode=True)  # the common case, fast
                if len(raw) != SIGNATURE_SIZE:
                    raise ValueError("not 64 bytes")
            else:
                raw = decode_signature(signature)
        except (ValueError, TypeError, binascii.Error):
            raise RowError(
                "signature", "signature_malformed", "A signature is 64 bytes, base64 or hex."
            ) from None
        key = None
        at = entry.end
        for valid_from, valid_to, public_key in reversed(entry.meter.keys):
            if valid_from < at and (valid_to is None or at <= valid_to):
                key = public_key
                break
        if key is None:
            raise RowError(
                "signature", "no_key", "The meter has no public key valid at the reading's end."
            )
        if is_counter:
            message = counter_bytes(entry.meter.serial, self.canonical_time(at), entry.counter_wh)
        else:
            message = entry.message
        entry.signature = raw
        self._verify_batch.append((len(self.entries), message, raw, key))
        if len(self._verify_batch) >= VERIFY_CHUNK:
            self._flush_verify()

    def _flush_verify(self) -> None:
        if self._verify_batch:
            self._futures.append(_verify_pool().submit(verify_many, self._verify_batch))
            self._verify_batch = []

    def wait_for_signatures(self) -> int:
        """Collect the pool's verdicts; rows whose signature fails become errors (counted)."""
        self._flush_verify()
        bad: list[int] = []
        for future in self._futures:
            bad.extend(future.result())
        self._futures = []
        if not bad:
            return 0
        error = RowError(
            "signature",
            "signature_invalid",
            "The signature does not verify with the meter's key valid at that time.",
        )
        for index in bad:
            entry = self.entries[index]
            entry.error = error
            self.errors.append((entry.row, error))
        return len(bad)

    def device_ids(self) -> list[int]:
        return sorted({entry.meter.device.id for entry in self.entries if entry.error is None})

    def meter_ids(self) -> list[int]:
        return sorted({entry.meter.id for entry in self.entries if entry.error is None})

    # -- phase 2 (inside the transaction, rows locked) --------------------------------------

    def recheck_locked(self, devices: dict[int, Device], meters: dict[int, Meter]) -> bool:
        """Re-read what phase 1 assumed; False if a meter's keys or window changed meanwhile."""
        for info in self._devices.values():
            locked = devices.get(info.id)
            if locked is not None:
                info.status = locked.status
        keys: dict[int, list] = defaultdict(list)
        rows = (
            MeterKey.objects.filter(meter_id__in=list(meters))
            .order_by("meter_id", "valid_from")
            .values_list("meter_id", "valid_from", "valid_to", "public_key")
        )
        for meter_id, *key in rows:
            keys[meter_id].append(tuple(key))
        for info in self._meters.values():
            if isinstance(info, MeterInfo) and info.id in meters:
                meter = meters[info.id]
                fingerprint = _meter_fingerprint(meter.status, meter.removed_at, keys[meter.pk])
                if fingerprint != info.fingerprint:
                    return False
        for entry in self.entries:
            if entry.error is None and entry.meter.device.status not in (
                Device.Status.APPROVED,
                Device.Status.ACTIVE,
            ):
                entry.error = RowError(
                    "meter", "device_not_active", "The device stopped accepting readings."
                )
                self.errors.append((entry.row, entry.error))
        return True

    def _stored(self) -> dict[int, dict[dt.datetime, tuple]]:
        """(end, wh, counter_wh, held) of stored readings by meter and start; one query per
        device and table, over the batch's time span."""
        spans: dict[int, list[dt.datetime]] = {}
        for entry in self.entries:
            if entry.error is not None:
                continue
            device = entry.meter.device
            if entry.start is not None:
                low, high = entry.start, entry.end
            else:  # a counter: the readings ending and starting at its time
                low, high = entry.end - device.interval, entry.end + device.interval
            span = spans.get(device.id)
            if span is None:
                spans[device.id] = [low, high]
            else:
                span[0] = min(span[0], low)
                span[1] = max(span[1], high)
        stored: dict[int, dict[dt.datetime, tuple]] = defaultdict(dict)
        for device_id, (low, high) in spans.items():
            for model, held in ((Reading, False), (PendingReading, True)):
                rows = (
                    model.objects.filter(device_id=device_id, start__gte=low, start__lt=high)
                    .order_by()
                    .values_list("meter_id", "start", "end", "wh", "counter_wh")
                )
                for meter_id, start, end, wh, counter_wh in rows:
                    stored[meter_id][start] = (end, wh, counter_wh, held)
        return stored

    def resolve(self, meters: dict[int, Meter]) -> Outcome:
        """Decide every row against the store and the rest of the batch."""
        stored = self._stored()
        outcome = Outcome()
        self._derive_counters(meters, stored, outcome)
        seen: dict[tuple[int, dt.datetime], Entry] = {}
        for entry in self.entries:
            if entry.error is not None or entry.baseline or entry.duplicate:
                continue
            key = (entry.meter.id, entry.start)
            previous = seen.get(key)
            if previous is not None:
                same = previous.end == entry.end and previous.wh == entry.wh
                entry.error = RowError(
                    "start",
                    "duplicate_in_batch" if same else "overlap_in_batch",
                    f"Row {previous.row} has {'the same' if same else 'another'} reading for "
                    "this meter and interval.",
                )
                self.errors.append((entry.row, entry.error))
                continue
            seen[key] = entry
            existing = stored.get(entry.meter.id, {}).get(entry.start)
            if existing is not None:
                end, wh, _counter, held = existing
                if end == entry.end and wh == entry.wh:
                    entry.duplicate = True
                    continue
                entry.error = RowError(
                    "wh",
                    "held_reading_conflict" if held else "reading_conflict",
                    f"A different reading for this meter and interval is {'held for review' if held else 'recorded'} "  # noqa: E501
                    f"({wh} Wh).",
                )
                self.errors.append((entry.row, entry.error))
        for entry in self.entries:
            if entry.error is not None:
                continue
            if entry.duplicate:
                outcome.duplicates += 1
            elif entry.baseline:
                outcome.baselines += 1
            else:
                outcome.accepted.append(entry)
                for flag in entry.flags:
                    outcome.review[flag] = outcome.review.get(flag, 0) + 1
        outcome.error_count, outcome.errors = self.report()
        return outcome

    def row_errors(self) -> list[tuple[int, RowError]]:
        """One error per bad row, in row order. A bad signature wins: it may arrive after
        the row was also found to clash with stored readings, and it is the root cause."""
        by_row: dict[int, RowError] = {}
        for row, error in self.errors:
            if row not in by_row or error.code == "signature_invalid":
                by_row[row] = error
        return sorted(by_row.items(), key=lambda item: item[0])

    def report(self) -> tuple[int, list[dict]]:
        """(number of bad rows, the first max_errors of them as row/field/code/message)."""
        errors = self.row_errors()
        return len(errors), [
            {"row": row, "field": error.field, "code": error.code, "message": error.message}
            for row, error in errors[: self.max_errors]
        ]

    def _derive_counters(self, meters: dict[int, Meter], stored, outcome: Outcome) -> None:
        """Counter values become intervals [previous time, time) with wh = the difference."""
        by_meter: dict[int, list[Entry]] = defaultdict(list)
        for entry in self.entries:
            if entry.counter_wh is not None and entry.error is None:
                by_meter[entry.meter.id].append(entry)
        for meter_id, entries in by_meter.items():
            meter = meters[meter_id]
            entries.sort(key=lambda e: (e.end, e.row))
            prev_time, prev_value = meter.counter_at, meter.counter_wh
            for entry in entries:
                device = entry.meter.device
                if prev_time is not None and entry.end <= prev_time:
                    if _counter_recorded(stored.get(meter_id, {}), entry, device) or (
                        entry.end == prev_time and entry.counter_wh == prev_value
                    ):
                        entry.duplicate = True
                    else:
                        entry.error = RowError(
                            "time",
                            "counter_conflict",
                            "Not after the meter's last counter reading "
                            f"({format_time(prev_time)}) and not a re-sent one.",
                        )
                        self.errors.append((entry.row, entry.error))
                    continue
                if prev_time is None:
                    entry.baseline = True
                    prev_time, prev_value = entry.end, entry.counter_wh
                    continue
                if entry.end - prev_time != device.interval:
                    entry.error = RowError(
                        "time",
                        "counter_gap",
                        f"The previous counter reading is at {format_time(prev_time)}; counters "
                        "must be one interval apart. To restart after a gap, reset the meter's "
                        "counter baseline.",
                    )
                    self.errors.append((entry.row, entry.error))
                    continue
                if entry.counter_wh < prev_value:
                    entry.error = RowError(
                        "counter_wh",
                        "counter_decreased",
                        f"The counter went down from {prev_value} Wh. A rollover or a meter "
                        "replacement must be recorded first (counter reset or meter replacement).",
                    )
                    self.errors.append((entry.row, entry.error))
                    continue
                entry.start = prev_time
                entry.wh = entry.counter_wh - prev_value
                entry.message = reading_bytes(
                    entry.meter.serial,
                    self.canonical_time(entry.start),
                    self.canonical_time(entry.end),
                    entry.wh,
                )
                flags = ()
                if entry.wh > device.max_wh:
                    flags = ("over_capacity",)
                if entry.start < self._backdate_before:
                    flags = (*flags, "backdated")
                entry.flags = flags
                prev_time, prev_value = entry.end, entry.counter_wh
            if (prev_time, prev_value) != (meter.counter_at, meter.counter_wh):
                outcome.counter_updates[meter_id] = (prev_time, prev_value)


def _counter_recorded(stored: dict, entry: Entry, device: DeviceInfo) -> bool:
    """Whether a stored counter-derived reading ends or starts at this counter value."""
    ending = stored.get(entry.end - device.interval)
    if ending is not None and ending[0] == entry.end and ending[2] == entry.counter_wh:
        return True
    starting = stored.get(entry.end)
    return (
        starting is not None
        and starting[2] is not None
        and starting[2] - starting[1] == entry.counter_wh
    )


def _meter_fingerprint(status: str, removed_at, keys) -> tuple:
    return (status, removed_at, tuple(keys))
