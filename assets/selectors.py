"""Reads about grid areas, devices, meters and readings, scoped to what the user may see.

Visibility: the issuing body and auditors see everything. Members of the registering
organisation and of co-owner organisations see a device fully (owners, meters, readings,
batches). Everyone, signed in or not, sees approved and active devices' public data and
all grid areas.
"""

import datetime as dt
from typing import Any

from django.db.models import F, Q, QuerySet

from accounts.models import User
from accounts.permissions import user_organisation_ids, user_reads_everything
from assets.canonical import reading_bytes
from assets.errors import BatchRootMismatch
from assets.models import (
    Device,
    DeviceGenerationDay,
    DeviceOwner,
    GridArea,
    Meter,
    Reading,
    ReadingBatch,
)
from ledger.merkle import ProofError, inclusion_proof, leaf_hash, verify_inclusion
from registry.hooks import Hook

PUBLIC_STATUSES = (Device.Status.APPROVED, Device.Status.ACTIVE)
ISSUABLE_METER_KINDS = (Meter.Kind.GENERATION, Meter.Kind.STORAGE)


def _authenticated(user: User | None) -> bool:
    return user is not None and user.is_authenticated


def grid_area_list() -> QuerySet[GridArea]:
    """Grid areas are public."""
    return GridArea.objects.all()


def device_ids_with_full_access(user: User | None) -> QuerySet | None:
    """Devices the user sees fully, as a subquery; None means every device."""
    if not _authenticated(user):
        return Device.objects.none().values("pk")
    if user_reads_everything(user):
        return None
    own = user_organisation_ids(user)
    return Device.objects.filter(
        Q(organisation_id__in=own) | Q(owners__organisation_id__in=own)
    ).values("pk")


def device_list(*, user: User | None) -> QuerySet[Device]:
    """Public devices plus those the user sees fully."""
    qs = Device.objects.select_related("grid_area", "organisation")
    full = device_ids_with_full_access(user)
    if full is None:
        return qs
    return qs.filter(Q(status__in=PUBLIC_STATUSES) | Q(pk__in=full))


def device_has_full_access(*, user: User | None, device: Device) -> bool:
    """Whether the user sees the device fully (owners, meters, readings, batches)."""
    full = device_ids_with_full_access(user)
    return full is None or full.filter(pk=device.pk).exists()


def meter_list(*, user: User | None) -> QuerySet[Meter]:
    """Meters of the devices the user sees fully."""
    qs = Meter.objects.select_related("device")
    full = device_ids_with_full_access(user)
    return qs if full is None else qs.filter(device_id__in=full)


# Narrow the readings a user may list; each takes (user, queryset) and returns a queryset.
# Higher apps register here in AppConfig.ready() (consumers: a household's meters are read
# by others only through its consent check, never through this list).
# Callable[[User | None, QuerySet[Reading]], QuerySet[Reading]]
READING_VISIBILITY_HOOKS = Hook("assets.reading_visibility")


def reading_list(*, user: User | None) -> QuerySet[Reading]:
    """Accepted readings of the devices the user sees fully."""
    qs = Reading.objects.select_related("meter")
    full = device_ids_with_full_access(user)
    qs = qs if full is None else qs.filter(device_id__in=full)
    for hook in READING_VISIBILITY_HOOKS:
        qs = hook(user, qs)
    return qs


def reading_batch_list(*, user: User | None) -> QuerySet[ReadingBatch]:
    """Batches of the user's organisations; the issuing body and auditors see all."""
    qs = ReadingBatch.objects.all()
    if not _authenticated(user):
        return qs.none()
    if user_reads_everything(user):
        return qs
    return qs.filter(organisation_id__in=user_organisation_ids(user))


def readings_for_issuance(*, device_id: int, start: dt.datetime, end: dt.datetime) -> QuerySet:
    """Accepted readings of the device inside [start, end) that are not issued yet.

    Only generation and storage (discharge) meters' readings count; consumption readings
    are recorded but never issued. Ordered by start, then meter.
    """
    return (
        Reading.objects.filter(
            device_id=device_id,
            start__gte=start,
            end__lte=end,
            issued_at__isnull=True,
            meter__kind__in=ISSUABLE_METER_KINDS,
        )
        .select_related("meter")
        .order_by("start", "meter_id")
    )


def device_owners(*, device_id: int) -> list[DeviceOwner]:
    """The device's co-owners with their accounts; `.share` is a Fraction summing to 1."""
    return list(
        DeviceOwner.objects.filter(device_id=device_id)
        .select_related("organisation", "account")
        .order_by("id")
    )


def reading_proof(*, reading: Reading) -> dict[str, Any]:
    """The reading's leaf bytes and its RFC 9162 inclusion proof in its batch's Merkle root.

    Recomputes the batch's leaves from the stored readings (O(batch size)); the root it
    reaches is checked against the recorded one, so a changed reading cannot be proven.
    """
    batch = reading.batch
    rows = (
        Reading.objects.filter(batch_id=batch.pk)
        .order_by("index_in_batch")
        .values_list("meter__serial", "start", "end", "wh")
    )
    leaves = [leaf_hash(reading_bytes(serial, start, end, wh)) for serial, start, end, wh in rows]
    data = reading_bytes(reading.meter.serial, reading.start, reading.end, reading.wh)
    index, size = reading.index_in_batch, len(leaves)
    proof = inclusion_proof(index, size, leaves)
    try:
        verify_inclusion(leaf_hash(data), index, size, proof, bytes.fromhex(batch.merkle_root))
    except ProofError:
        raise BatchRootMismatch(batch_id=batch.pk) from None
    return {
        "reading_id": reading.pk,
        "canonical": data.decode(),
        "leaf_hash": leaf_hash(data).hex(),
        "index": index,
        "tree_size": size,
        "proof": [node.hex() for node in proof],
        "merkle_root": batch.merkle_root,
        "batch_id": batch.pk,
        "ledger": {
            "subject": batch.ledger_subject,
            "kind": "reading_batch.accepted",
            "pending_event_id": batch.ledger_pending_event_id,
        },
    }


GENERATION_STEPS = ("hour", "day", "month")


def device_generation(
    *, device_ids: list[int], step: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Accepted generation per device and hour, day or month (UTC), in one grouped query.

    Hours sum the readings (a week of a fleet); days and months sum the per-day totals
    (`DeviceGenerationDay`), whole UTC days from the one `start` falls in.
    """
    from django.db.models import Sum
    from django.db.models.functions import Trunc, TruncMonth

    if step not in GENERATION_STEPS:
        raise ValueError(f"step must be one of {GENERATION_STEPS}")
    if step == "hour":
        return list(
            Reading.objects.filter(device_id__in=device_ids, start__gte=start, start__lt=end)
            .annotate(bucket=Trunc("start", step, tzinfo=dt.UTC))
            .values("device_id", "bucket")
            .annotate(wh=Sum("wh"))
            .order_by("bucket", "device_id")
        )
    last = end - dt.timedelta(microseconds=1)  # `end` is exclusive
    days = DeviceGenerationDay.objects.filter(
        device_id__in=device_ids,
        day__gte=start.astimezone(dt.UTC).date(),
        day__lte=last.astimezone(dt.UTC).date(),
    )
    if step == "day":
        rows = days.values("device_id", "wh", bucket=F("day")).order_by("day", "device_id")
    else:
        rows = (
            days.annotate(bucket=TruncMonth("day"))
            .values("device_id", "bucket")
            .annotate(wh=Sum("wh"))
            .order_by("bucket", "device_id")
        )
    # Buckets as UTC midnights, as Trunc over the readings gives them.
    return [
        {
            "device_id": row["device_id"],
            "bucket": dt.datetime.combine(row["bucket"], dt.time(), tzinfo=dt.UTC),
            "wh": row["wh"],
        }
        for row in rows
    ]


def device_directory() -> QuerySet[Device]:
    """Approved and active devices, as anyone may list them (locations are rounded by views)."""
    return (
        Device.objects.filter(status__in=PUBLIC_STATUSES)
        .select_related("grid_area", "organisation")
        .order_by("grid_area__country", "name")
    )


def meters_in_place(meters: QuerySet[Meter], start: dt.datetime, end: dt.datetime) -> QuerySet:
    """The meters installed over the whole of [start, end) (no date: always installed)."""
    return meters.filter(Q(installed_at__isnull=True) | Q(installed_at__lte=start)).filter(
        Q(removed_at__isnull=True) | Q(removed_at__gte=end)
    )


def meters_metered_wh(
    *, owner_of: dict[int, int], owners: list[int], start: dt.datetime, end: dt.datetime
) -> dict[int, int | None]:
    """Each owner's Wh in [start, end) over its meters (`owner_of`: meter id -> owner id),
    None when a meter's accepted readings do not cover the whole period or it has no meter.

    A reading covering only part of the period counts for that part, pro rata to time and
    rounded down (an hourly meter in a 15-minute slot counts a quarter of its hour). The
    market's delivery settlement and the consumers' site meters both read through this, so
    a slot is measured by one rule whoever owns the meter.
    """
    covered = dict.fromkeys(owner_of, 0)
    wh = dict.fromkeys(owner_of, 0)
    readings = Reading.objects.filter(meter_id__in=owner_of, start__lt=end, end__gt=start)
    for meter_id, r_start, r_end, r_wh in readings.values_list("meter_id", "start", "end", "wh"):
        overlap = int((min(r_end, end) - max(r_start, start)).total_seconds())
        length = int((r_end - r_start).total_seconds())
        covered[meter_id] += overlap
        wh[meter_id] += r_wh * overlap // length
    seconds = int((end - start).total_seconds())
    result: dict[int, int | None] = {}
    for owner in owners:
        mine = [pk for pk, of in owner_of.items() if of == owner]
        if not mine or any(covered[pk] < seconds for pk in mine):
            result[owner] = None
        else:
            result[owner] = sum(wh[pk] for pk in mine)
    return result
