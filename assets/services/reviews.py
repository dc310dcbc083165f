"""Held reading batches: the issuing body accepts or rejects them."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from assets import errors, locks, storage
from assets.models import (
    PendingReading,
    Reading,
    ReadingBatch,
)
from assets.services.common import (
    _require_issuing_body,
)
from assets.services.hooks import readings_accepted_hooks_run
from assets.services.readings import _batch_data
from ledger.services import ledger_append
from registry.errors import InvalidInput


def _held_batch(batch_id: int) -> ReadingBatch:
    batch = locks.reading_batch_lock(batch_id)
    if batch is None:
        raise errors.ReadingBatchNotFound(batch_id=batch_id)
    if batch.status != ReadingBatch.Status.HELD:
        raise errors.ReadingBatchNotHeld(status=batch.status)
    return batch


@transaction.atomic
def reading_batch_accept(*, actor: User, batch_id: int, reason: str = "") -> ReadingBatch:
    """The issuing body accepts a held batch: its readings become accepted readings."""
    _require_issuing_body(actor)
    batch = _held_batch(batch_id)
    try:
        with transaction.atomic():  # a savepoint: a conflict leaves the batch held
            moved = storage.pending_readings_accept(batch)
    except IntegrityError:
        raise errors.ReadingsConflict(
            "Readings of this batch overlap readings recorded meanwhile.", batch_id=batch.pk
        ) from None
    PendingReading.objects.filter(batch=batch).delete()
    batch.status = ReadingBatch.Status.ACCEPTED
    batch.review_note = reason
    batch.reviewed_by = actor
    batch.reviewed_at = timezone.now()
    event = ledger_append(
        kind="reading_batch.accepted",
        actor=actor,
        subject=[batch, *(("device", i) for i in _batch_device_ids(batch))],
        data={**_batch_data(batch), "reviewed": True, "reason": reason, "readings": moved},
    )
    batch.ledger_pending_event_id = event.pk
    batch.save(
        update_fields=["status", "review_note", "reviewed_by", "reviewed_at",
                       "ledger_pending_event_id"]
    )  # fmt: skip
    readings_accepted_hooks_run(batch)
    return batch


def _batch_device_ids(batch: ReadingBatch) -> list[int]:
    if batch.device_id is not None:
        return [batch.device_id]
    for model in (Reading, PendingReading):
        ids = sorted(set(model.objects.filter(batch=batch).values_list("device_id", flat=True)))
        if ids:
            return ids
    return []


@transaction.atomic
def reading_batch_reject(*, actor: User, batch_id: int, reason: str) -> ReadingBatch:
    """The issuing body rejects a held batch: its readings are discarded, with a reason."""
    _require_issuing_body(actor)
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    batch = _held_batch(batch_id)
    device_ids = _batch_device_ids(batch)
    PendingReading.objects.filter(batch=batch).delete()
    batch.status = ReadingBatch.Status.REJECTED
    batch.review_note = reason
    batch.reviewed_by = actor
    batch.reviewed_at = timezone.now()
    batch.save(update_fields=["status", "review_note", "reviewed_by", "reviewed_at"])
    ledger_append(
        kind="reading_batch.rejected",
        actor=actor,
        subject=[batch, *(("device", i) for i in device_ids)],
        data={**_batch_data(batch), "reason": reason},
    )
    return batch
