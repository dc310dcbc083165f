"""Phase 2, inside the writing transaction with the devices and meters locked.

Compares the rows with what is stored (range queries over accepted and held readings, one
per table for many devices), turns counters into intervals from the meter's locked counter
state, and finds duplicates and overlaps inside the batch. Each refused row gets its
RowError and is added to the submission's error list.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections import defaultdict
from collections.abc import Callable
from functools import reduce

from django.db.models import Q

from assets.canonical import format_time, reading_bytes
from assets.ingest.records import DeviceInfo, Entry, Outcome, RowError
from assets.ingest.review import review_flags
from assets.models import Meter, PendingReading, Reading

# (end, wh, counter_wh, held) of stored readings by meter id and start
Stored = dict[int, dict[dt.datetime, tuple]]
SPANS_PER_QUERY = 500
RowErrors = list[tuple[int, RowError]]


def stored_readings(entries: list[Entry]) -> Stored:
    """The stored readings the valid entries could meet: over each device's time span in
    the batch, one query per table for up to SPANS_PER_QUERY devices."""
    spans: dict[int, list[dt.datetime]] = {}
    for entry in entries:
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
    stored: Stored = defaultdict(dict)
    devices = list(spans.items())
    for first in range(0, len(devices), SPANS_PER_QUERY):
        # One query per table for many devices: each device's span is an OR'ed range on
        # the (device, start) index, which PostgreSQL scans as one bitmap; a query per
        # device cost two ORM compilations each (15% of a 100-device batch's main thread).
        in_spans = reduce(
            operator.or_,
            (
                Q(device_id=device_id, start__gte=low, start__lt=high)
                for device_id, (low, high) in devices[first : first + SPANS_PER_QUERY]
            ),
        )
        for model, held in ((Reading, False), (PendingReading, True)):
            rows = (
                model.objects.filter(in_spans)
                .order_by()
                .values_list("meter_id", "start", "end", "wh", "counter_wh")
            )
            for meter_id, start, end, wh, counter_wh in rows:
                stored[meter_id][start] = (end, wh, counter_wh, held)
    return stored


def counters_derive(
    entries: list[Entry],
    *,
    meters: dict[int, Meter],
    stored: Stored,
    outcome: Outcome,
    errors: RowErrors,
    canonical_time: Callable[[dt.datetime], str],
    backdate_before: dt.datetime,
) -> None:
    """Counter values become intervals [previous time, time) with wh = the difference."""
    by_meter: dict[int, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.counter_wh is not None and entry.error is None:
            by_meter[entry.meter.id].append(entry)
    for meter_id, meter_entries in by_meter.items():
        meter = meters[meter_id]
        meter_entries.sort(key=lambda e: (e.end, e.row))
        prev_time, prev_value = meter.counter_at, meter.counter_wh
        for entry in meter_entries:
            device = entry.meter.device
            if prev_time is not None and entry.end <= prev_time:
                if counter_recorded(stored.get(meter_id, {}), entry, device) or (
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
                    errors.append((entry.row, entry.error))
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
                errors.append((entry.row, entry.error))
                continue
            if entry.counter_wh < prev_value:
                entry.error = RowError(
                    "counter_wh",
                    "counter_decreased",
                    f"The counter went down from {prev_value} Wh. A rollover or a meter "
                    "replacement must be recorded first (counter reset or meter replacement).",
                )
                errors.append((entry.row, entry.error))
                continue
            entry.start = prev_time
            entry.wh = entry.counter_wh - prev_value
            entry.message = reading_bytes(
                entry.meter.serial,
                canonical_time(entry.start),
                canonical_time(entry.end),
                entry.wh,
            )
            entry.flags = review_flags(entry.wh, entry.start, device, backdate_before)
            prev_time, prev_value = entry.end, entry.counter_wh
        if (prev_time, prev_value) != (meter.counter_at, meter.counter_wh):
            outcome.counter_updates[meter_id] = (prev_time, prev_value)


def counter_recorded(stored: dict, entry: Entry, device: DeviceInfo) -> bool:
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


def entries_compare(entries: list[Entry], *, stored: Stored, errors: RowErrors) -> None:
    """Mark re-sent readings duplicate; refuse overlaps in the batch and with the store."""
    seen: dict[tuple[int, dt.datetime], Entry] = {}
    for entry in entries:
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
            errors.append((entry.row, entry.error))
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
            errors.append((entry.row, entry.error))


def outcome_collect(entries: list[Entry], outcome: Outcome) -> None:
    """Sort the decided entries into the outcome: stored (with review counts), skipped."""
    for entry in entries:
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
