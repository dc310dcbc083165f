"""Row locks of the assets app, taken in one order so writers never deadlock.

Lock order (a service takes the ones it needs, in this order, each in primary-key order):

1. the organisation a device is registered under (device registration only);
2. grid areas;
3. devices;
4. meters (a meter's device is locked before the meter);
5. reading batches.

So device transitions, meter changes and reading batches of one device serialise on the
device row. Every helper here locks with `select_for_update()` and must run inside the
caller's transaction; querysets are ordered by primary key so that two transactions
locking overlapping sets take the rows in the same order (Saleor's `lock_objects`).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from accounts.models import Organisation
from assets import errors
from assets.models import Device, GridArea, Meter, ReadingBatch

__all__ = [
    "device_lock",
    "devices_lock",
    "devices_qs_for_update",
    "grid_area_lock",
    "meter_lock",
    "meters_lock",
    "meters_qs_for_update",
    "organisation_lock",
    "reading_batch_lock",
]


def organisation_lock(organisation_id: int) -> Organisation | None:
    """The organisation a device is being registered under, locked; None if there is none."""
    return Organisation.objects.select_for_update().filter(pk=organisation_id).first()


def grid_area_lock(grid_area_id: int) -> GridArea | None:
    """The grid area, locked; None if there is none."""
    return GridArea.objects.select_for_update().filter(pk=grid_area_id).first()


def devices_qs_for_update() -> QuerySet[Device]:
    """Devices to lock, in primary-key order."""
    return Device.objects.select_for_update().order_by("pk")


def meters_qs_for_update() -> QuerySet[Meter]:
    """Meters to lock, in primary-key order (lock their devices first)."""
    return Meter.objects.select_for_update().order_by("pk")


def device_lock(device_id: int) -> Device:
    """The device, locked; DeviceNotFound if there is none."""
    device = devices_qs_for_update().filter(pk=device_id).first()
    if device is None:
        raise errors.DeviceNotFound(device_id=device_id)
    return device


def meter_lock(meter_id: int) -> tuple[Device, Meter]:
    """The meter and its device, device first; MeterNotFound if there is no such meter."""
    device_id = Meter.objects.filter(pk=meter_id).values_list("device_id", flat=True).first()
    if device_id is None:
        raise errors.MeterNotFound(meter_id=meter_id)
    device = device_lock(device_id)
    meter = meters_qs_for_update().get(pk=meter_id)
    return device, meter


def devices_lock(device_ids: Iterable[int]) -> dict[int, Device]:
    """The devices that exist among `device_ids`, locked in primary-key order, by id."""
    return {device.pk: device for device in devices_qs_for_update().filter(pk__in=device_ids)}


def meters_lock(meter_ids: Iterable[int]) -> dict[int, Meter]:
    """The meters that exist among `meter_ids`, locked in primary-key order, by id."""
    return {meter.pk: meter for meter in meters_qs_for_update().filter(pk__in=meter_ids)}


def reading_batch_lock(batch_id: int) -> ReadingBatch | None:
    """The reading batch, locked; None if there is none."""
    return ReadingBatch.objects.select_for_update().filter(pk=batch_id).first()
