"""`ReadingIngest`: one submission's rows through the phases (see `assets.ingest`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings

from accounts.models import User
from assets.canonical import counter_bytes, reading_bytes
from assets.errors import ReadingsMalformed
from assets.ingest.meters import MeterResolver, key_at
from assets.ingest.parsing import TimeParser, check_aligned, parse_wh
from assets.ingest.records import Entry, MeterInfo, Outcome, RowError
from assets.ingest.resolve import (
    counters_derive,
    entries_compare,
    outcome_collect,
    stored_readings,
)
from assets.ingest.review import review_flags
from assets.ingest.signatures import SignatureChecks, signature_decode
from assets.models import Device, Meter

ACCEPTING = (Device.Status.APPROVED, Device.Status.ACTIVE)


class ReadingIngest:
    """Validates one submission; see the `assets.ingest` docstring for the two phases."""

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
        self._resolver = MeterResolver(
            actor=actor,
            only_device_id=device_id,
            capacity_margin=Decimal(str(settings.READINGS_CAPACITY_MARGIN)),
        )
        self._times = TimeParser()
        self._signatures = SignatureChecks()
        limit_days = settings.READINGS_BACKDATE_LIMIT_DAYS
        self._backdate_before = now - dt.timedelta(days=limit_days)
        self._max_rows = settings.READINGS_BATCH_MAX_ROWS

    @property
    def organisation_id(self) -> int | None:
        """The organisation whose devices the batch's meters belong to (None: no meter yet)."""
        return self._resolver.organisation_id

    def canonical_time(self, moment: dt.datetime) -> str:
        """format_time(moment), cached: batches repeat the same instants across meters."""
        return self._times.canonical(moment)

    # -- phase 1 (no transaction, no locks) ------------------------------------------------

    def consume(self, rows: Iterable) -> None:
        """Check every raw row (see `assets.readings_io`) and queue its signature."""
        for raw in rows:
            self.add(raw)
        self._signatures.flush()

    def add(self, raw) -> None:
        """Check one raw row on its own; a refused row is kept in `errors` with its number."""
        row, is_counter, serial, a, b, value, signature, shape_error = raw
        self.rows += 1
        if self.rows > self._max_rows:
            raise ReadingsMalformed(
                f"At most {self._max_rows} rows per batch.", max_rows=self._max_rows
            )
        try:
            if shape_error is not None:
                raise RowError(*shape_error)
            meter = self._resolver.meter(serial)
            device = meter.device
            if is_counter:
                entry = self._counter_entry(row, meter, a, value)
            else:
                entry = self._interval_entry(row, meter, a, b, value)
            if meter.installed_at is not None and (entry.start or entry.end) < meter.installed_at:
                raise RowError(None, "before_meter_installed", "Before the meter was installed.")
            if meter.removed_at is not None and entry.end > meter.removed_at:
                raise RowError(None, "after_meter_removed", "After the meter was removed.")
            if device.status not in ACCEPTING:
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

    def _interval_entry(self, row: int, meter: MeterInfo, a, b, value) -> Entry:
        device = meter.device
        start, start_text, start_epoch = self._times.time(a, "start")
        end, end_text, _ = self._times.time(b, "end")
        wh = parse_wh(value, "wh")
        if end <= start:
            raise RowError("end", "end_not_after_start", "The end must be after the start.")
        check_aligned(start_epoch, device, "start")
        if end - start != device.interval:
            raise RowError(
                "end",
                "wrong_duration",
                f"A reading covers exactly the device's interval of "
                f"{device.interval_seconds // 60} minutes.",
            )
        if end > self.now:
            raise RowError("end", "in_future", "The reading ends in the future.")
        return Entry(
            row=row,
            meter=meter,
            start=start,
            end=end,
            wh=wh,
            signature=None,
            message=reading_bytes(meter.serial, start_text, end_text, wh),
            flags=review_flags(wh, start, device, self._backdate_before),
        )

    def _counter_entry(self, row: int, meter: MeterInfo, a, value) -> Entry:
        time, _text, epoch = self._times.time(a, "time")
        counter = parse_wh(value, "counter_wh")
        check_aligned(epoch, meter.device, "time")
        if time > self.now:
            raise RowError("time", "in_future", "The counter reading is in the future.")
        return Entry(
            row=row, meter=meter, start=None, end=time, wh=None, signature=None, counter_wh=counter
        )

    def _queue_signature(self, entry: Entry, signature, is_counter: bool) -> None:
        raw = signature_decode(signature)
        at = entry.end
        key = key_at(entry.meter, at)
        if key is None:
            raise RowError(
                "signature", "no_key", "The meter has no public key valid at the reading's end."
            )
        if is_counter:
            message = counter_bytes(entry.meter.serial, self.canonical_time(at), entry.counter_wh)
        else:
            message = entry.message
        entry.signature = raw
        self._signatures.queue(len(self.entries), message, raw, key)

    def wait_for_signatures(self) -> int:
        """Collect the pool's verdicts; rows whose signature fails become errors (counted)."""
        bad = self._signatures.wait()
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
        """The devices of the rows still valid, to lock in primary-key order."""
        return sorted({entry.meter.device.id for entry in self.entries if entry.error is None})

    def meter_ids(self) -> list[int]:
        """The meters of the rows still valid, to lock in primary-key order."""
        return sorted({entry.meter.id for entry in self.entries if entry.error is None})

    # -- phase 2 (inside the transaction, rows locked) --------------------------------------

    def recheck_locked(self, devices: dict[int, Device], meters: dict[int, Meter]) -> bool:
        """Re-read what phase 1 assumed; False if a meter's keys or window changed meanwhile."""
        if not self._resolver.recheck_locked(devices, meters):
            return False
        for entry in self.entries:
            if entry.error is None and entry.meter.device.status not in ACCEPTING:
                entry.error = RowError(
                    "meter", "device_not_active", "The device stopped accepting readings."
                )
                self.errors.append((entry.row, entry.error))
        return True

    def resolve(self, meters: dict[int, Meter]) -> Outcome:
        """Decide every row against the store and the rest of the batch."""
        stored = stored_readings(self.entries)
        outcome = Outcome()
        counters_derive(
            self.entries,
            meters=meters,
            stored=stored,
            outcome=outcome,
            errors=self.errors,
            canonical_time=self.canonical_time,
            backdate_before=self._backdate_before,
        )
        entries_compare(self.entries, stored=stored, errors=self.errors)
        outcome_collect(self.entries, outcome)
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
