"""The assets app's hand-written SQL: bulk reading inserts and moving held readings.

A batch's readings go in with COPY on PostgreSQL (bulk_create elsewhere): measured, the
ORM costs more than the work on batches of 100,000 rows. Every function here runs inside
the caller's transaction, after the caller has taken its locks (see `assets.locks`).

Accepting readings also adds them to the per-device, per-day sums (`DeviceGenerationDay`,
what the producer's charts read), in the same transaction: one upsert per batch, its rows
in (device, day) order. They are the last rows such a transaction locks (after devices,
meters and the batch; the accepted-readings hooks only start tasks on commit), and no
writer locks anything after them, so two batches of one device and day queue on them
and cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import Sum
from django.db.models.functions import TruncDate

from assets.models import DeviceGenerationDay, PendingReading, Reading, ReadingBatch

if TYPE_CHECKING:
    from assets.ingest import Entry

__all__ = [
    "deferred_constraints_check",
    "generation_days_add",
    "pending_readings_accept",
    "readings_insert",
]

_COPY_COLUMNS = (
    "device_id",
    "meter_id",
    "batch_id",
    "start",
    "end",
    "wh",
    "signature",
    "is_signed",
    "index_in_batch",
    "counter_wh",
)


# SQLite takes at most 32,766 parameters per statement.
_DAYS_PER_STATEMENT = 5000

# COPY text format: NULL is \N, and a bytea in hex form is \x... with the backslash doubled.
_COPY_NULL = "\\N"
_COPY_BYTEA = "\\\\x"


class _LineReader(io.RawIOBase):
    """A read-only file over an iterator of text lines (what COPY FROM STDIN consumes)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer)
        chunks = [self._rest]
        have = len(self._rest)
        for line in self._lines:
            data = line.encode()
            chunks.append(data)
            have += len(data)
            if have >= size:
                break
        data = b"".join(chunks)
        self._rest = data[size:]
        data = data[:size]
        buffer[: len(data)] = data
        return len(data)


def readings_insert(batch: ReadingBatch, entries: list[Entry], *, held: bool) -> None:
    """Insert the batch's rows: COPY on PostgreSQL, bulk_create elsewhere."""
    model = PendingReading if held else Reading
    if connection.vendor == "postgresql":
        _copy_readings(model, batch, entries)
    else:
        _bulk_create_readings(model, batch, entries, held=held)
    if not held:
        totals: dict[tuple[int, dt.date], int] = {}
        for entry in entries:
            key = (entry.meter.device.id, entry.start.astimezone(dt.UTC).date())
            totals[key] = totals.get(key, 0) + entry.wh
        generation_days_add(totals)


def _bulk_create_readings(model, batch: ReadingBatch, entries: list[Entry], *, held: bool) -> None:
    rows = []
    for index, entry in enumerate(entries):
        row = model(
            device_id=entry.meter.device.id,
            meter_id=entry.meter.id,
            batch=batch,
            start=entry.start,
            end=entry.end,
            wh=entry.wh,
            signature=entry.signature,
            is_signed=entry.signature is not None,
            index_in_batch=index,
            counter_wh=entry.counter_wh,
        )
        if held:
            row.flags = ",".join(entry.flags)
        rows.append(row)
    model.objects.bulk_create(rows, batch_size=2000)


def _copy_readings(model, batch: ReadingBatch, entries: list[Entry]) -> None:
    held = model is PendingReading
    opts = model._meta
    columns = [opts.get_field(name.removesuffix("_id")).column for name in _COPY_COLUMNS]
    if held:
        columns.append(opts.get_field("flags").column)
    quote = connection.ops.quote_name
    sql = f"COPY {quote(opts.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    times: dict[dt.datetime, str] = {}
    batch_id = batch.pk

    def stamp(moment: dt.datetime) -> str:
        text = times.get(moment)
        if text is None:
            text = times[moment] = moment.isoformat()
        return text

    def lines() -> Iterator[str]:
        for index, entry in enumerate(entries):
            signature = entry.signature
            counter = entry.counter_wh
            line = (
                f"{entry.meter.device.id}\t{entry.meter.id}\t{batch_id}\t{stamp(entry.start)}\t"
                f"{stamp(entry.end)}\t{entry.wh}\t"
                f"{_COPY_BYTEA + signature.hex() if signature is not None else _COPY_NULL}\t"
                f"{'t' if signature is not None else 'f'}\t{index}\t"
                f"{counter if counter is not None else _COPY_NULL}"
            )
            if held:
                line += "\t" + ",".join(entry.flags)
            yield line + "\n"

    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(sql, io.BufferedReader(_LineReader(lines()), 1 << 16))


def deferred_constraints_check() -> None:
    """Run the transaction's deferred foreign-key checks now rather than at COMMIT.

    PostgreSQL only: Django's foreign keys are DEFERRABLE INITIALLY DEFERRED, and
    `check_constraints` sets them IMMEDIATE (which checks every row queued so far) and back
    to DEFERRED, so later statements in the transaction behave as before. A violation
    raises IntegrityError here. On SQLite the same call would scan whole tables; there
    the checks stay at COMMIT.
    """
    if connection.vendor == "postgresql":
        connection.check_constraints()


def pending_readings_accept(batch: ReadingBatch) -> int:
    """Copy a held batch's readings into the accepted readings (one INSERT ... SELECT).

    Returns how many rows moved. The unique (meter, start) constraint raises
    IntegrityError when a reading recorded meanwhile overlaps; the caller runs this in a
    savepoint and turns that into a conflict. The pending rows are left for it to delete.
    """
    pending = PendingReading._meta
    reading = Reading._meta
    quote = connection.ops.quote_name
    columns = [pending.get_field(name.removesuffix("_id")).column for name in _COPY_COLUMNS]
    column_sql = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(reading.db_table)} ({column_sql}) "  # noqa: S608
            f"SELECT {column_sql} FROM {quote(pending.db_table)} WHERE "
            f"{quote(pending.get_field('batch').column)} = %s",
            [batch.pk],
        )
        moved = cursor.rowcount
    days = (
        PendingReading.objects.filter(batch=batch)
        .annotate(day=TruncDate("start", tzinfo=dt.UTC))
        .values_list("device_id", "day")
        .annotate(total=Sum("wh"))
        .order_by()
    )
    generation_days_add({(device_id, day): total for device_id, day, total in days})
    return moved


def generation_days_add(totals: dict[tuple[int, dt.date], int]) -> None:
    """Add Wh to the (device, UTC day) sums, creating the days not seen yet (one upsert)."""
    if not totals:
        return
    table = connection.ops.quote_name(DeviceGenerationDay._meta.db_table)
    keys = sorted(totals)  # (device, day) order: concurrent batches lock rows alike
    with connection.cursor() as cursor:
        for first in range(0, len(keys), _DAYS_PER_STATEMENT):
            chunk = keys[first : first + _DAYS_PER_STATEMENT]
            cursor.execute(
                f"INSERT INTO {table} (device_id, day, wh) VALUES "  # noqa: S608
                + ", ".join(["(%s, %s, %s)"] * len(chunk))
                + f" ON CONFLICT (device_id, day) DO UPDATE SET wh = {table}.wh + excluded.wh",
                [value for key in chunk for value in (key[0], key[1], totals[key])],
            )
