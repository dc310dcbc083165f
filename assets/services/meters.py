"""Meters of a device and their Ed25519 keys: register, rotate, counter reset, replace, remove."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import User
from assets import errors, locks
from assets.canonical import format_time
from assets.models import (
    Device,
    Meter,
    MeterKey,
    PendingReading,
    Reading,
)
from assets.services.common import (
    MAX_SAFE_INTEGER,
    _invalid,
    _is_int,
    _require_operator,
)
from assets.validation import (
    SERIAL_FORMAT,
    b64,
    decode_public_key,
)
from ledger.services import ledger_append
from registry.errors import InvalidInput

NOT_ALIGNED = "Must be aligned to the device's reading interval (UTC)."


def _aligned(moment: dt.datetime, device: Device) -> bool:
    return not moment.microsecond and int(moment.timestamp()) % (device.interval_minutes * 60) == 0


def _public_key(value: str | bytes | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        return b64(decode_public_key(value))
    except (ValueError, TypeError):
        raise errors.MeterKeyInvalid(fields={"public_key": ["32 bytes, base64 or hex."]}) from None


def _check_aware(name: str, value: dt.datetime | None) -> None:
    if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
        raise _invalid({name: ["A time with a UTC offset is required."]})


@transaction.atomic
def meter_register(
    *,
    actor: User,
    device_id: int,
    serial: str,
    kind: str = Meter.Kind.GENERATION,
    public_key: str | bytes | None = None,
    key_valid_from: dt.datetime | None = None,
    installed_at: dt.datetime | None = None,
) -> Meter:
    """Register a meter of a device, with its Ed25519 key when it signs readings."""
    device = locks.device_lock(device_id)
    _require_operator(actor, device)
    return meter_create(
        actor=actor,
        device=device,
        serial=serial,
        kind=kind,
        public_key=public_key,
        key_valid_from=key_valid_from,
        installed_at=installed_at,
    )


def meter_create(
    *,
    actor: User,
    device: Device,
    serial: str,
    kind: str = Meter.Kind.GENERATION,
    public_key: str | bytes | None = None,
    key_valid_from: dt.datetime | None = None,
    installed_at: dt.datetime | None = None,
) -> Meter:
    """meter_register's checks and writes once the device is locked and the actor may act
    on it (devices_onboard: the issuing body). Call it inside the caller's transaction."""
    if device.status == Device.Status.DECOMMISSIONED:
        raise errors.DeviceStatusConflict(status=device.status)
    if not isinstance(serial, str) or not SERIAL_FORMAT.fullmatch(serial):
        raise _invalid({"serial": ["1-64 characters of A-Z a-z 0-9 . _ : - (first alphanumeric)."]})
    if kind not in Meter.Kind.values:
        raise _invalid({"kind": [f"One of {', '.join(Meter.Kind.values)}."]})
    _check_aware("installed_at", installed_at)
    _check_aware("key_valid_from", key_valid_from)
    key = _public_key(public_key)
    if key is None and device.require_signed_readings:
        raise errors.MeterKeyRequired(fields={"public_key": ["required by the device's policy"]})
    if Meter.objects.filter(serial=serial).exists():
        raise errors.MeterExists(serial=serial)
    meter = Meter.objects.create(serial=serial, kind=kind, device=device, installed_at=installed_at)
    valid_from = None
    if key is not None:
        valid_from = (
            key_valid_from
            or installed_at
            or dt.datetime.combine(device.commissioning_date, dt.time(), tzinfo=dt.UTC)
        )
        MeterKey.objects.create(meter=meter, public_key=key, valid_from=valid_from)
    ledger_append(
        kind="meter.registered",
        actor=actor,
        subject=[meter, device],
        data={
            "meter_id": meter.pk,
            "serial": serial,
            "kind": kind,
            "device_id": device.pk,
            "installed_at": installed_at,
            "public_key": key,
            "key_valid_from": valid_from,
        },
    )
    return meter


@transaction.atomic
def meter_key_rotate(
    *, actor: User, meter_id: int, public_key: str | bytes, valid_from: dt.datetime | None = None
) -> MeterKey:
    """Start a new key at `valid_from` (default now); the previous key ends there.

    A reading is checked against the key with valid_from < end <= valid_to, so the new
    key may not start before the end of a signed reading already recorded.
    """
    device, meter = locks.meter_lock(meter_id)
    _require_operator(actor, device, or_issuing_body=True)
    if meter.status != Meter.Status.ACTIVE:
        raise errors.MeterStatusConflict(status=meter.status)
    _check_aware("valid_from", valid_from)
    key = _public_key(public_key)
    if key is None:
        raise errors.MeterKeyInvalid(fields={"public_key": ["required"]})
    valid_from = valid_from or timezone.now()
    current = MeterKey.objects.filter(meter=meter, valid_to__isnull=True).first()
    last_signed = [
        model.objects.filter(meter=meter, is_signed=True).aggregate(last=Max("end"))["last"]
        for model in (Reading, PendingReading)
    ]
    last_signed_end = max((end for end in last_signed if end is not None), default=None)
    if current is not None and valid_from <= current.valid_from:
        raise errors.MeterKeyConflict("The new key must start after the current key started.")
    if last_signed_end is not None and valid_from < last_signed_end:
        raise errors.MeterKeyConflict(
            "Signed readings up to " + format_time(last_signed_end) + " are recorded; the new "
            "key may not start before that.",
            last_signed_end=last_signed_end.isoformat(),
        )
    if current is not None:
        current.valid_to = valid_from
        current.save(update_fields=["valid_to"])
    new_key = MeterKey.objects.create(meter=meter, public_key=key, valid_from=valid_from)
    ledger_append(
        kind="meter.key_rotated",
        actor=actor,
        subject=meter,
        data={
            "meter_id": meter.pk,
            "serial": meter.serial,
            "public_key": key,
            "valid_from": valid_from,
            "previous_public_key": current.public_key if current else None,
        },
    )
    return new_key


@transaction.atomic
def meter_counter_reset(
    *, actor: User, meter_id: int, at: dt.datetime, counter_wh: int, reason: str
) -> Meter:
    """Set a counter meter's baseline explicitly: after a rollover, a gap or a repair.

    The next counter reading one interval after `at` counts from `counter_wh`; energy
    between the last counter reading and `at` is not derived (never a silent negative).
    """
    device, meter = locks.meter_lock(meter_id)
    _require_operator(actor, device, or_issuing_body=True)
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    _check_aware("at", at)
    if not _is_int(counter_wh) or not 0 <= counter_wh < MAX_SAFE_INTEGER:
        raise _invalid({"counter_wh": ["A non-negative whole number of Wh."]})
    if not _aligned(at, device):
        raise errors.MeterTimeInvalid(fields={"at": [NOT_ALIGNED]})
    if at > timezone.now():
        raise errors.MeterTimeInvalid(fields={"at": ["Cannot be in the future."]})
    if meter.counter_at is not None and at < meter.counter_at:
        raise errors.CounterResetConflict(counter_at=meter.counter_at.isoformat())
    previous = {"time": meter.counter_at, "counter_wh": meter.counter_wh}
    meter.counter_at, meter.counter_wh = at, counter_wh
    meter.save(update_fields=["counter_at", "counter_wh"])
    ledger_append(
        kind="meter.counter_reset",
        actor=actor,
        subject=meter,
        data={
            "meter_id": meter.pk,
            "serial": meter.serial,
            "time": at,
            "counter_wh": counter_wh,
            "previous": previous,
            "reason": reason,
        },
    )
    return meter


def _current_key_end(meter: Meter, at: dt.datetime) -> None:
    """End the meter's current key at `at`; a key cannot end at or before its own start."""
    current = MeterKey.objects.filter(meter=meter, valid_to__isnull=True).first()
    if current is None:
        return
    if at <= current.valid_from:
        raise errors.MeterKeyConflict(
            "The meter's current key started at " + format_time(current.valid_from) + "; the "
            "meter cannot stop at or before that.",
            key_valid_from=current.valid_from.isoformat(),
        )
    current.valid_to = at
    current.save(update_fields=["valid_to"])


@transaction.atomic
def meter_replace(
    *,
    actor: User,
    meter_id: int,
    at: dt.datetime,
    new_serial: str,
    reason: str,
    public_key: str | bytes | None = None,
    counter_wh: int | None = None,
) -> Meter:
    """Swap a meter: the old one stops at `at`, a new one (same device and kind) starts there.

    `counter_wh` is the new meter's counter at `at` (its baseline), if it counts.
    """
    device, meter = locks.meter_lock(meter_id)
    _require_operator(actor, device, or_issuing_body=True)
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    if meter.status != Meter.Status.ACTIVE:
        raise errors.MeterStatusConflict(status=meter.status)
    _check_aware("at", at)
    if not _aligned(at, device):
        raise errors.MeterTimeInvalid(fields={"at": [NOT_ALIGNED]})
    if at > timezone.now():
        raise errors.MeterTimeInvalid(fields={"at": ["Cannot be in the future."]})
    if meter.installed_at is not None and at <= meter.installed_at:
        raise errors.MeterTimeInvalid(fields={"at": ["Must be after the old meter was installed."]})
    if not isinstance(new_serial, str) or not SERIAL_FORMAT.fullmatch(new_serial):
        raise _invalid({"new_serial": ["1-64 characters of A-Z a-z 0-9 . _ : -."]})
    if counter_wh is not None and (not _is_int(counter_wh) or counter_wh < 0):
        raise _invalid({"counter_wh": ["A non-negative whole number of Wh."]})
    key = _public_key(public_key)
    if key is None and device.require_signed_readings:
        raise errors.MeterKeyRequired(fields={"public_key": ["required by the device's policy"]})
    if Meter.objects.filter(serial=new_serial).exists():
        raise errors.MeterExists(serial=new_serial)
    late = [
        model.objects.filter(meter=meter, end__gt=at).exists()
        for model in (Reading, PendingReading)
    ]
    if any(late):
        raise errors.MeterStatusConflict("The old meter has readings after `at`.")
    _current_key_end(meter, at)
    new = Meter.objects.create(
        serial=new_serial,
        kind=meter.kind,
        device=device,
        installed_at=at,
        counter_wh=counter_wh,
        counter_at=at if counter_wh is not None else None,
    )
    if key is not None:
        MeterKey.objects.create(meter=new, public_key=key, valid_from=at)
    meter.status = Meter.Status.REMOVED
    meter.removed_at = at
    meter.replaced_by = new
    meter.save(update_fields=["status", "removed_at", "replaced_by"])
    ledger_append(
        kind="meter.replaced",
        actor=actor,
        subject=[meter, new, device],
        data={
            "meter_id": meter.pk,
            "serial": meter.serial,
            "new_meter_id": new.pk,
            "new_serial": new.serial,
            "time": at,
            "public_key": key,
            "counter_wh": counter_wh,
            "reason": reason,
        },
    )
    return new


@transaction.atomic
def meter_remove(*, actor: User, meter_id: int, at: dt.datetime, reason: str) -> Meter:
    """Take a meter out of service at `at`; later readings of it are refused."""
    device, meter = locks.meter_lock(meter_id)
    _require_operator(actor, device, or_issuing_body=True)
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    if meter.status != Meter.Status.ACTIVE:
        raise errors.MeterStatusConflict(status=meter.status)
    _check_aware("at", at)
    if at > timezone.now():
        raise errors.MeterTimeInvalid(fields={"at": ["Cannot be in the future."]})
    if any(
        model.objects.filter(meter=meter, end__gt=at).exists()
        for model in (Reading, PendingReading)
    ):
        raise errors.MeterStatusConflict("The meter has readings after `at`.")
    _current_key_end(meter, at)
    meter.status = Meter.Status.REMOVED
    meter.removed_at = at
    meter.save(update_fields=["status", "removed_at"])
    ledger_append(
        kind="meter.removed",
        actor=actor,
        subject=[meter, device],
        data={"meter_id": meter.pk, "serial": meter.serial, "time": at, "reason": reason},
    )
    return meter
