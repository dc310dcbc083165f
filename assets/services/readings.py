"""Reading batches: submit (validate, lock, store, record) and mark accepted readings issued."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from assets import errors, locks, storage
from assets.canonical import format_time
from assets.ingest import CONFLICT_CODES, REVIEW_MESSAGES, Outcome, ReadingIngest
from assets.models import (
    Meter,
    Reading,
    ReadingBatch,
)
from assets.services.hooks import readings_accepted_hooks_run
from ledger.merkle import leaf_hash, root_from_leaf_hashes
from ledger.services import ledger_append


@dataclass
class ReadingSubmission:
    """The result of `readings_submit`."""

    batch: ReadingBatch | None
    rows: int
    stored: int
    duplicates: int
    baselines: int
    error_count: int = 0
    errors: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.batch.status if self.batch is not None else "unchanged"


def _rejection(ingest: ReadingIngest) -> errors.ReadingsRejected:
    codes_seen = {error.code for _row, error in ingest.row_errors()}
    error_count, report = ingest.report()
    extra = {"rows": ingest.rows, "error_count": error_count, "errors": report}
    if codes_seen and codes_seen <= CONFLICT_CODES:
        return errors.ReadingsConflict(**extra)
    first = report[0] if report else None
    detail = errors.ReadingsRejected.default_detail
    if first:
        detail += f" First problem: row {first['row']}: {first['message']}"
    return errors.ReadingsRejected(detail, **extra)


def readings_submit(
    *,
    actor: User,
    rows: Iterable,
    accept_valid: bool = False,
    device_id: int | None = None,
    now: dt.datetime | None = None,
) -> ReadingSubmission:
    """Validate and record a batch of readings (raw rows from `assets.readings_io`).

    The batch is accepted whole, held whole for review (over capacity or backdated rows),
    or rejected whole with a per-row report; with `accept_valid` the valid rows are kept
    and the others reported. Re-sent identical readings are skipped (a batch of only
    those changes nothing); rows that contradict stored readings make it a conflict.
    """
    _require_reading_submitter(actor)
    now = now or timezone.now()
    ingest = ReadingIngest(actor=actor, now=now, device_id=device_id)
    # Parsing happens before the transaction (CPU-bound, no locks held) while a thread pool
    # verifies the signatures. To keep only the valid rows, their verdicts are needed before
    # choosing; a whole batch is stored while the last ones arrive, and one bad signature
    # rolls it back.
    ingest.consume(rows)
    if ingest.rows == 0:
        raise errors.ReadingsMalformed("The upload holds no readings.")
    if accept_valid:
        ingest.wait_for_signatures()
    return _readings_store(actor=actor, ingest=ingest, accept_valid=accept_valid)


def _require_reading_submitter(actor: User) -> None:
    """Refuse, before reading any row, a user who cannot submit readings for anyone.

    Which meters a submitter may use is checked per row; this only turns away roles that
    never may (viewers, auditors, the issuing body, pending or suspended members).
    """
    may_submit = Membership.objects.filter(
        user=actor,
        organisation__status=Organisation.Status.APPROVED,
        organisation__is_producer=True,
        role__in=[Membership.Role.OPERATOR, Membership.Role.ADMIN],
    ).exists()
    if not may_submit:
        raise errors.NotReadingSubmitter()


@transaction.atomic
def _readings_store(*, actor: User, ingest: ReadingIngest, accept_valid: bool) -> ReadingSubmission:
    devices = locks.devices_lock(ingest.device_ids())
    meters = locks.meters_lock(ingest.meter_ids())
    if not ingest.recheck_locked(devices, meters):
        raise errors.MeterKeyConflict(
            "A meter's keys or status changed while the batch was checked; send it again."
        )
    outcome = ingest.resolve(meters)
    if outcome.error_count and not (accept_valid and (outcome.accepted or outcome.counter_updates)):
        ingest.wait_for_signatures()
        raise _rejection(ingest)
    result = ReadingSubmission(
        batch=None,
        rows=ingest.rows,
        stored=len(outcome.accepted),
        duplicates=outcome.duplicates,
        baselines=outcome.baselines,
        error_count=outcome.error_count,
        errors=outcome.errors,
    )
    if not outcome.accepted and not outcome.counter_updates:
        if ingest.wait_for_signatures():
            raise _rejection(ingest)
        return result  # only re-sent readings: nothing changes, nothing to record
    batch = _batch_record(actor=actor, ingest=ingest, outcome=outcome, meters=meters)
    # Checking the foreign keys of 100,000 copied rows takes PostgreSQL about a second; done
    # now, it overlaps the signature threads' last chunks instead of running alone in COMMIT.
    storage.deferred_constraints_check()
    if ingest.wait_for_signatures():
        raise _rejection(ingest)  # rolls the batch back
    if batch.status == ReadingBatch.Status.ACCEPTED:
        readings_accepted_hooks_run(batch)
    result.batch = batch
    return result


def _batch_record(
    *, actor: User, ingest: ReadingIngest, outcome: Outcome, meters: dict[int, Meter]
) -> ReadingBatch:
    accepted = outcome.accepted
    held = bool(outcome.review)
    root = root_from_leaf_hashes([leaf_hash(entry.message) for entry in accepted]).hex()
    device_ids = sorted({entry.meter.device.id for entry in accepted})
    meter_ids = sorted({entry.meter.id for entry in accepted})
    per_meter: dict[int, list[int]] = {}
    for entry in accepted:
        tally = per_meter.setdefault(entry.meter.id, [0, 0])
        tally[0] += 1
        tally[1] += entry.wh
    counter_updates = {
        meters[meter_id].serial: {"time": format_time(time), "counter_wh": value}
        for meter_id, (time, value) in sorted(outcome.counter_updates.items())
    }
    review = [{"code": code, "rows": rows} for code, rows in sorted(outcome.review.items())]
    batch = ReadingBatch.objects.create(
        organisation_id=ingest.organisation_id,
        submitted_by=actor,
        device_id=device_ids[0] if len(device_ids) == 1 else None,
        meter_id=meter_ids[0] if len(meter_ids) == 1 else None,
        status=ReadingBatch.Status.HELD if held else ReadingBatch.Status.ACCEPTED,
        size=len(accepted),
        total_wh=sum(entry.wh for entry in accepted),
        first_start=min((entry.start for entry in accepted), default=None),
        last_end=max((entry.end for entry in accepted), default=None),
        merkle_root=root,
        review_reasons=review,
        counter_updates=counter_updates,
    )
    storage.readings_insert(batch, accepted, held=held)
    for meter_id, (time, value) in outcome.counter_updates.items():
        meter = meters[meter_id]
        meter.counter_at, meter.counter_wh = time, value
        meter.save(update_fields=["counter_at", "counter_wh"])
    pending = ledger_append(
        kind="reading_batch.held" if held else "reading_batch.accepted",
        actor=actor,
        # the meters: their readings, and the counters the batch advanced
        subject=[
            batch,
            *(("device", device_id) for device_id in device_ids),
            *(("meter", pk) for pk in sorted(set(per_meter) | set(outcome.counter_updates))),
        ],
        data={
            **_batch_data(batch),
            "meters": [
                {
                    "serial": meters[meter_id].serial,
                    "device_id": meters[meter_id].device_id,
                    "readings": count,
                    "wh": wh,
                }
                for meter_id, (count, wh) in sorted(
                    per_meter.items(), key=lambda item: meters[item[0]].serial
                )
            ],
            "review": [
                {**item, "reason": REVIEW_MESSAGES.get(item["code"], "")} for item in review
            ],
            "counter_updates": counter_updates,
        },
    )
    batch.ledger_pending_event_id = pending.pk
    batch.save(update_fields=["ledger_pending_event_id"])
    return batch


def _batch_data(batch: ReadingBatch) -> dict[str, Any]:
    return {
        "batch_id": batch.pk,
        "organisation_id": batch.organisation_id,
        "status": batch.status,
        "merkle_root": batch.merkle_root,
        "size": batch.size,
        "total_wh": batch.total_wh,
        "first_start": batch.first_start,
        "last_end": batch.last_end,
        "leaf": "RFC 8785 JSON of {meter, start, end, wh} per reading, in batch order",
    }


def readings_mark_issued(*, reading_ids: list[int], at: dt.datetime) -> int:
    """Mark accepted readings issued (called inside the certificates issuance transaction).

    All or nothing: if any reading is already issued or does not exist, nothing is marked
    and ReadingsAlreadyIssued (a Conflict) is raised. The caller's service records the
    ledger event (certificate issuance names the readings), so this helper records none.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("readings_mark_issued must run inside the issuing transaction")
    wanted = sorted(set(reading_ids))
    if not wanted:
        return 0
    marked = 0
    with transaction.atomic():  # a savepoint: a refusal leaves the caller's work intact
        for offset in range(0, len(wanted), 5000):
            chunk = wanted[offset : offset + 5000]
            marked += Reading.objects.filter(pk__in=chunk, issued_at__isnull=True).update(
                issued_at=at
            )
        if marked != len(wanted):
            raise errors.ReadingsAlreadyIssued(
                requested=len(wanted), available=marked, reading_ids=wanted[:100]
            )
    return marked
