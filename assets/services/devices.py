"""Device registration, edits and reading/issuance policy (lifecycle and co-owners: own modules)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation, User
from accounts.permissions import user_can_act_for
from assets import codes, errors, locks
from assets.models import (
    Device,
    GridArea,
    Reading,
)
from assets.services.common import (
    MAX_SAFE_INTEGER,
    _invalid,
    _is_int,
    _require_issuing_body,
    _require_operator,
    _save_changes,
)
from assets.services.owners import _owner_shares, _owners_store
from ledger.services import ledger_append
from registry.errors import InvalidInput

DEVICE_FIELDS = (
    "name",
    "grid_area_id",
    "technology_code",
    "energy_source_code",
    "capacity_w",
    "commissioning_date",
    "latitude",
    "longitude",
    "support",
    "is_storage",
    "storage_capacity_wh",
    "round_trip_efficiency",
    "interval_minutes",
    "require_signed_readings",
    "issuance_policy",
    "issuance_requires_approval",
)


def _decimal_problem(value: Any, low: int, high: int, places: int) -> str | None:
    if not isinstance(value, Decimal):
        try:
            value = Decimal(str(value)) if isinstance(value, str | int) else None
        except InvalidOperation:
            value = None
    if value is None or not value.is_finite():
        return "A decimal number is required."
    if not low <= value <= high:
        return f"Must be between {low} and {high}."
    if value.as_tuple().exponent < -places:
        return f"At most {places} decimal places."
    return None


class DeviceProblems(dict[str, list[str]]):
    """Per-field problems of device values. `shape` says whether one of them is a value no
    device could have (what the API's schema describes); without one, each value is
    well-formed and the refusal is `device_inconsistent`: a grid area the registry does
    not have, a date after today, or values that do not fit together."""

    shape = False


def device_problems(values: Mapping[str, Any], *, today: dt.date) -> DeviceProblems:
    """Per-field problems of device values (complete for registration, partial for updates)."""
    problems = DeviceProblems()

    def bad(name: str, message: str, *, relational: bool = False) -> None:
        problems.setdefault(name, []).append(message)
        problems.shape = problems.shape or not relational

    if "name" in values and not (isinstance(values["name"], str) and values["name"].strip()):
        bad("name", "A name is required.")
    if "grid_area_id" in values and not (
        _is_int(values["grid_area_id"])
        and GridArea.objects.filter(pk=values["grid_area_id"]).exists()
    ):
        bad("grid_area", "No such grid area.", relational=True)
    technology = values.get("technology_code")
    source = values.get("energy_source_code")
    if "technology_code" in values and technology not in codes.technologies():
        bad("technology_code", "Not an EECS technology code (see /api/v1/eecs-codes/).")
    if "energy_source_code" in values and source not in codes.energy_sources():
        bad("energy_source_code", "Not an EECS energy-source code (see /api/v1/eecs-codes/).")
    if (
        technology in codes.technologies()
        and source in codes.energy_sources()
        and not codes.combination_allowed(technology, source)
    ):
        bad(
            "energy_source_code",
            f"EECS does not allow {source} with technology {technology}.",
            relational=True,
        )
    if "capacity_w" in values:
        capacity = values["capacity_w"]
        if not _is_int(capacity) or not 0 < capacity < MAX_SAFE_INTEGER:
            bad("capacity_w", "A positive whole number of W.")
    if "commissioning_date" in values:
        date = values["commissioning_date"]
        if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
            bad("commissioning_date", "A date is required.")
        elif date > today:
            bad("commissioning_date", "Cannot be in the future.", relational=True)
    for name, limit in (("latitude", 90), ("longitude", 180)):
        if name in values and (problem := _decimal_problem(values[name], -limit, limit, 6)):
            bad(name, problem)
    if "support" in values and values["support"] not in Device.Support.values:
        bad("support", f"One of {', '.join(Device.Support.values)}.")
    if "interval_minutes" in values and values["interval_minutes"] not in (15, 60):
        bad("interval_minutes", "Readings come every 15 or every 60 minutes.")
    if (
        "issuance_policy" in values
        and values["issuance_policy"] not in Device.IssuancePolicy.values
    ):
        bad("issuance_policy", f"One of {', '.join(Device.IssuancePolicy.values)}.")
    for name in ("is_storage", "require_signed_readings", "issuance_requires_approval"):
        if name in values and not isinstance(values[name], bool):
            bad(name, "true or false.")
    if values.get("is_storage") is True:
        storage = values.get("storage_capacity_wh")
        if not _is_int(storage) or not 0 < storage < MAX_SAFE_INTEGER:
            message = "A storage device needs its capacity in Wh."
            bad("storage_capacity_wh", message, relational=storage is None)
        efficiency = values.get("round_trip_efficiency")
        if efficiency is None or _decimal_problem(efficiency, 0, 1, 4) or Decimal(efficiency) <= 0:
            message = "A storage device needs an efficiency above 0, up to 1."
            bad("round_trip_efficiency", message, relational=efficiency is None)
    elif values.get("is_storage") is False:
        for name in ("storage_capacity_wh", "round_trip_efficiency"):
            if values.get(name) is not None:
                bad(name, "Only storage devices have this.", relational=True)
    return problems


def device_choices(values: Mapping[str, Any], problems: Mapping[str, list[str]]) -> dict[str, list]:
    """The valid values of each choice field among `problems`, as the API's `extra.choices`.

    A bad energy source for a known technology lists only the sources EECS allows with that
    technology (a PV plant's: F010401...), otherwise every code of the list.
    """
    choices: dict[str, list] = {}
    technology = values.get("technology_code")
    if "technology_code" in problems:
        choices["technology_code"] = sorted(codes.technologies())
    if "energy_source_code" in problems:
        sources = sorted(codes.energy_sources())
        if technology in codes.technologies():
            sources = [s for s in sources if codes.combination_allowed(technology, s)]
        choices["energy_source_code"] = sources
    for name, valid in (
        ("support", Device.Support.values),
        ("interval_minutes", Device.Interval.values),
        ("issuance_policy", Device.IssuancePolicy.values),
    ):
        if name in problems:
            choices[name] = list(valid)
    return choices


def _device_invalid(problems: DeviceProblems, values: Mapping[str, Any]) -> InvalidInput:
    """400 with every problem in `extra.fields`: `invalid`, or `device_inconsistent` when
    each value is well-formed (DeviceProblems)."""
    error = errors.DeviceInconsistent if not problems.shape else InvalidInput
    return _invalid(problems, choices=device_choices(values, problems), error=error)


_PUBLIC_PLACES = Decimal("0.01")


def _event_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Device values for a public event: the location only to 0.01 degrees (about 1 km),
    as the public API shows it, since a rooftop plant's exact position locates a home."""
    out = dict(values)
    for name in ("latitude", "longitude"):
        if name in out:
            out[f"approx_{name}"] = Decimal(out.pop(name)).quantize(_PUBLIC_PLACES)
    return out


def _device_data(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.pk,
        "organisation_id": device.organisation_id,
        **_event_values({name: getattr(device, name) for name in DEVICE_FIELDS}),
    }


def _normalise_device_values(values: dict[str, Any]) -> dict[str, Any]:
    for name in ("latitude", "longitude", "round_trip_efficiency"):
        if isinstance(values.get(name), str | int) and not isinstance(values.get(name), bool):
            values[name] = Decimal(str(values[name]))
    return values


@transaction.atomic
def device_register(
    *,
    actor: User,
    organisation_id: int,
    name: str,
    grid_area_id: int,
    technology_code: str,
    energy_source_code: str,
    capacity_w: int,
    commissioning_date: dt.date,
    latitude: Decimal,
    longitude: Decimal,
    owners: Sequence[Mapping[str, Any]],
    support: str = Device.Support.NONE,
    is_storage: bool = False,
    storage_capacity_wh: int | None = None,
    round_trip_efficiency: Decimal | None = None,
    interval_minutes: int = 60,
    require_signed_readings: bool = False,
    issuance_policy: str = Device.IssuancePolicy.MANUAL,
    issuance_requires_approval: bool = False,
) -> Device:
    """A producer registers a device in draft, with co-owners whose shares sum to 1."""
    organisation = locks.organisation_lock(organisation_id)
    if organisation is None or not user_can_act_for(actor, organisation):
        raise errors.NotDeviceOperator(organisation_id=organisation_id)
    return device_create(
        actor=actor,
        organisation=organisation,
        name=name,
        grid_area_id=grid_area_id,
        technology_code=technology_code,
        energy_source_code=energy_source_code,
        capacity_w=capacity_w,
        commissioning_date=commissioning_date,
        latitude=latitude,
        longitude=longitude,
        owners=owners,
        support=support,
        is_storage=is_storage,
        storage_capacity_wh=storage_capacity_wh,
        round_trip_efficiency=round_trip_efficiency,
        interval_minutes=interval_minutes,
        require_signed_readings=require_signed_readings,
        issuance_policy=issuance_policy,
        issuance_requires_approval=issuance_requires_approval,
    )


def device_create(
    *,
    actor: User,
    organisation: Organisation,
    name: str,
    grid_area_id: int,
    technology_code: str,
    energy_source_code: str,
    capacity_w: int,
    commissioning_date: dt.date,
    latitude: Decimal,
    longitude: Decimal,
    owners: Sequence[Mapping[str, Any]],
    support: str = Device.Support.NONE,
    is_storage: bool = False,
    storage_capacity_wh: int | None = None,
    round_trip_efficiency: Decimal | None = None,
    interval_minutes: int = 60,
    require_signed_readings: bool = False,
    issuance_policy: str = Device.IssuancePolicy.MANUAL,
    issuance_requires_approval: bool = False,
) -> Device:
    """device_register's checks and writes once the caller may act: the organisation is
    locked and the actor acts for it (device_register) or onboards for it as the issuing
    body (devices_onboard). Call it inside the caller's transaction."""
    if not organisation.is_producer:
        raise errors.NotDeviceOperator("Only a producer organisation registers devices.")
    values = _normalise_device_values(
        {
            "name": name,
            "grid_area_id": grid_area_id,
            "technology_code": technology_code,
            "energy_source_code": energy_source_code,
            "capacity_w": capacity_w,
            "commissioning_date": commissioning_date,
            "latitude": latitude,
            "longitude": longitude,
            "support": support,
            "is_storage": is_storage,
            "storage_capacity_wh": storage_capacity_wh,
            "round_trip_efficiency": round_trip_efficiency,
            "interval_minutes": interval_minutes,
            "require_signed_readings": require_signed_readings,
            "issuance_policy": issuance_policy,
            "issuance_requires_approval": issuance_requires_approval,
        }
    )
    if problems := device_problems(values, today=timezone.now().date()):
        raise _device_invalid(problems, values)
    shares = _owner_shares(owners)
    device = Device.objects.create(organisation=organisation, **values)
    owner_data = _owners_store(device, shares)
    ledger_append(
        kind="device.registered",
        actor=actor,
        subject=[device, organisation],
        data={**_device_data(device), "status": device.status, "owners": owner_data},
    )
    return device


DEVICE_EDITABLE = DEVICE_FIELDS


@transaction.atomic
def device_update(*, actor: User, device_id: int, **changes: Any) -> Device:
    """The producer edits a device while it is a draft or was rejected."""
    device = locks.device_lock(device_id)
    _require_operator(actor, device)
    if device.status not in (Device.Status.DRAFT, Device.Status.REJECTED):
        raise errors.DeviceStatusConflict(
            f"A {device.status} device cannot be edited; only drafts and rejected devices.",
            status=device.status,
        )
    unknown = sorted(set(changes) - set(DEVICE_EDITABLE))
    if unknown:
        raise _invalid({name: ["This field cannot be changed."] for name in unknown})
    merged = {name: getattr(device, name) for name in DEVICE_FIELDS}
    merged.update(_normalise_device_values(dict(changes)))
    if problems := device_problems(merged, today=timezone.now().date()):
        raise _device_invalid(problems, merged)
    changed = {name: merged[name] for name in changes if getattr(device, name) != merged[name]}
    if "interval_minutes" in changed and Reading.objects.filter(device=device).exists():
        raise errors.DeviceStatusConflict("The interval cannot change once readings exist.")
    if not changed:
        return device
    for name, value in changed.items():
        setattr(device, name, value)
    device.save(update_fields=[*changed, "updated_at"])
    ledger_append(
        kind="device.updated",
        actor=actor,
        subject=device,
        data={"device_id": device.pk, "changes": _event_values(changed)},
    )
    return device


POLICY_FIELDS = ("require_signed_readings", "issuance_policy", "issuance_requires_approval")


@transaction.atomic
def device_policy_set(*, actor: User, device_id: int, reason: str, **policy: Any) -> Device:
    """The issuing body changes a device's reading and issuance policy."""
    _require_issuing_body(actor)
    unknown = sorted(set(policy) - set(POLICY_FIELDS))
    if unknown:
        raise _invalid({name: ["Not a policy field."] for name in unknown})
    if problems := device_problems(policy, today=timezone.now().date()):
        raise _device_invalid(problems, policy)
    device = locks.device_lock(device_id)
    changed = _save_changes(device, policy)
    if not changed:
        return device
    ledger_append(
        kind="device.policy_changed",
        actor=actor,
        subject=device,
        data={"device_id": device.pk, "changes": changed, "reason": reason},
    )
    return device
