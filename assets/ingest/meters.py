"""Meter resolution and key checks: which meter and device a serial names, and its keys.

Phase 1 looks each serial up once (no locks) and keeps what the rows need; phase 2,
with the devices and meters locked, re-reads their status and keys and refuses the batch
if a key or the meter's window changed in between (the rows were checked against them).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from accounts.models import User
from accounts.permissions import user_can_act_for
from assets.ingest.records import DeviceInfo, MeterInfo, RowError
from assets.models import Device, Meter, MeterKey
from assets.validation import SERIAL_FORMAT, decode_public_key

MAX_METERS = 10_000  # distinct serials looked up per batch (one query each)


def meter_fingerprint(status: str, removed_at, keys) -> tuple:
    """What phase 1 relied on about a meter: status, removal time, keys as stored."""
    return (status, removed_at, tuple(keys))


def key_at(meter: MeterInfo, at: dt.datetime) -> bytes | None:
    """The meter's public key with valid_from < at <= valid_to, if any."""
    for valid_from, valid_to, public_key in reversed(meter.keys):
        if valid_from < at and (valid_to is None or at <= valid_to):
            return public_key
    return None


class MeterResolver:
    """Serial -> MeterInfo for one submission, checking the submitter may use the meter."""

    def __init__(
        self, *, actor: User, only_device_id: int | None, capacity_margin: Decimal
    ) -> None:
        self.actor = actor
        self.only_device_id = only_device_id
        self.organisation_id: int | None = None
        self.meters: dict[str, MeterInfo | RowError] = {}
        self.devices: dict[int, DeviceInfo] = {}
        self._margin = capacity_margin

    def meter(self, serial) -> MeterInfo:
        """The meter of a row's serial, or the RowError that refuses it (cached per serial)."""
        found = self.meters.get(serial) if isinstance(serial, str) else None
        if found is None:
            found = self._load_meter(serial)
            if isinstance(serial, str):
                self.meters[serial] = found
        if isinstance(found, RowError):
            raise found
        return found

    def _load_meter(self, serial) -> MeterInfo | RowError:
        if not isinstance(serial, str) or not SERIAL_FORMAT.fullmatch(serial):
            return RowError("meter", "invalid_serial", f"{serial!r} is not a meter serial.")
        if len(self.meters) >= MAX_METERS:
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
            fingerprint=meter_fingerprint(meter.status, meter.removed_at, keys),
        )

    def _device_info(self, device: Device) -> DeviceInfo:
        info = self.devices.get(device.pk)
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
            self.devices[device.pk] = info
        return info

    def recheck_locked(self, devices: dict[int, Device], meters: dict[int, Meter]) -> bool:
        """Take the locked devices' status; False if a meter's keys or window changed."""
        for info in self.devices.values():
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
        for info in self.meters.values():
            if isinstance(info, MeterInfo) and info.id in meters:
                meter = meters[info.id]
                fingerprint = meter_fingerprint(meter.status, meter.removed_at, keys[meter.pk])
                if fingerprint != info.fingerprint:
                    return False
        return True
