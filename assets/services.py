"""Every write about grid areas, devices, meters and readings: one function per use case.

Locking policy: a service locks the device before its meters, each in primary-key order
(`select_for_update`), so device transitions, meter changes and reading batches of one
device serialise and never deadlock. Reading batches are parsed before the transaction (CPU
work, no locks held) while signatures are verified on a thread pool; the store-dependent
checks, the insert and the event run inside it, and the last signature verdicts are awaited
before it commits.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.errors import NotIssuingBody
from accounts.models import Account, Membership, Organisation, User
from accounts.permissions import user_can_act_for, user_is_issuing_body
from assets import codes, errors
from assets.canonical import format_time
from assets.ingest import CONFLICT_CODES, REVIEW_MESSAGES, Entry, Outcome, ReadingIngest
from assets.models import (
    Device,
    DeviceOwner,
    GridArea,
    Meter,
    MeterKey,
    PendingReading,
    Reading,
    ReadingBatch,
)
from assets.validation import (
    COUNTRY_CODE,
    SERIAL_FORMAT,
    b64,
    decode_public_key,
    eic_problem,
    parse_share,
    time_zone_problem,
)
from ledger.merkle import leaf_hash, root_from_leaf_hashes
from ledger.services import ledger_append
from registry.errors import InvalidInput
from registry.hooks import Hook

MAX_OWNERS = 1000
MAX_SAFE_INTEGER = 2**53

# Called with each batch that becomes accepted, inside its transaction (other apps register
# here, e.g. to start automatic issuance with `delay_on_commit`); a hook must not write.
READINGS_ACCEPTED_HOOKS = Hook("assets.readings_accepted")  # Callable[[ReadingBatch], None]


def _save_changes(instance: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Set and save the fields whose value differs; return those (empty: nothing saved)."""
    changed = {name: value for name, value in changes.items() if getattr(instance, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(instance, name, value)
        instance.save(update_fields=[*changed, "updated_at"])
    return changed


def _require_issuing_body(actor: User) -> None:
    if not user_is_issuing_body(actor):
        raise NotIssuingBody()


def _invalid(fields: dict[str, list[str]], detail: str | None = None) -> InvalidInput:
    first = next(iter(fields.items()))
    return InvalidInput(detail or f"{first[0]}: {first[1][0]}", fields=fields)


# -- grid areas ----------------------------------------------------------------------------


def grid_area_problems(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per-field problems of grid-area values (the admin form shows the same messages)."""
    problems: dict[str, list[str]] = {}
    if "code" in values and (problem := eic_problem(str(values["code"]))):
        problems["code"] = [problem]
    if "name" in values and not str(values["name"]).strip():
        problems["name"] = ["A name is required."]
    if "country" in values and not COUNTRY_CODE.match(str(values["country"])):
        problems["country"] = ["Give an ISO 3166-1 alpha-2 code such as 'DE'."]
    if "time_zone" in values and (problem := time_zone_problem(str(values["time_zone"]))):
        problems["time_zone"] = [problem]
    if "emission_factor_g_per_kwh" in values:
        factor = values["emission_factor_g_per_kwh"]
        if (
            not isinstance(factor, Decimal)
            or not factor.is_finite()
            or factor < 0
            or factor >= Decimal("1000000")
            or factor.as_tuple().exponent < -3
        ):
            problems["emission_factor_g_per_kwh"] = [
                "A decimal from 0 to 999999.999 gCO2e/kWh with at most 3 decimal places."
            ]
    if "expiry_months" in values:
        months = values["expiry_months"]
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 600:
            problems["expiry_months"] = ["A whole number of months from 1 to 600."]
    return problems


def _grid_area_data(area: GridArea) -> dict[str, Any]:
    return {
        "grid_area_id": area.pk,
        "code": area.code,
        "name": area.name,
        "country": area.country,
        "time_zone": area.time_zone,
        "emission_factor_g_per_kwh": area.emission_factor_g_per_kwh,
        "expiry_months": area.expiry_months,
    }


@transaction.atomic
def grid_area_create(
    *,
    actor: User,
    code: str,
    name: str,
    country: str,
    time_zone: str,
    emission_factor_g_per_kwh: Decimal,
    expiry_months: int = 12,
) -> GridArea:
    """The issuing body registers a grid area (bidding zone) with its policies."""
    _require_issuing_body(actor)
    values = {
        "code": code,
        "name": name,
        "country": country,
        "time_zone": time_zone,
        "emission_factor_g_per_kwh": emission_factor_g_per_kwh,
        "expiry_months": expiry_months,
    }
    if problems := grid_area_problems(values):
        raise _invalid(problems)
    if GridArea.objects.filter(code=code).exists():
        raise errors.GridAreaExists(code=code)
    area = GridArea.objects.create(**values)
    ledger_append(kind="grid_area.created", actor=actor, subject=area, data=_grid_area_data(area))
    return area


GRID_AREA_EDITABLE = ("name", "time_zone", "emission_factor_g_per_kwh", "expiry_months")


@transaction.atomic
def grid_area_update(*, actor: User, grid_area_id: int, **changes: Any) -> GridArea:
    """The issuing body changes a grid area's name or policies (its code never changes)."""
    _require_issuing_body(actor)
    unknown = sorted(set(changes) - set(GRID_AREA_EDITABLE))
    if unknown:
        raise _invalid({name: ["This field cannot be changed."] for name in unknown})
    if problems := grid_area_problems(changes):
        raise _invalid(problems)
    area = GridArea.objects.select_for_update().filter(pk=grid_area_id).first()
    if area is None:
        raise errors.GridAreaNotFound(grid_area_id=grid_area_id)
    changed = _save_changes(area, changes)
    if not changed:
        return area
    ledger_append(
        kind="grid_area.updated",
        actor=actor,
        subject=area,
        data={"grid_area_id": area.pk, "code": area.code, "changes": changed},
    )
    return area


# -- devices -------------------------------------------------------------------------------

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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def device_problems(values: Mapping[str, Any], *, today: dt.date) -> dict[str, list[str]]:
    """Per-field problems of device values (complete for registration, partial for updates)."""
    problems: dict[str, list[str]] = {}

    def bad(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if "name" in values and not (isinstance(values["name"], str) and values["name"].strip()):
        bad("name", "A name is required.")
    if "grid_area_id" in values and not (
        _is_int(values["grid_area_id"])
        and GridArea.objects.filter(pk=values["grid_area_id"]).exists()
    ):
        bad("grid_area", "No such grid area.")
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
        bad("energy_source_code", f"EECS does not allow {source} with technology {technology}.")
    if "capacity_w" in values:
        capacity = values["capacity_w"]
        if not _is_int(capacity) or not 0 < capacity < MAX_SAFE_INTEGER:
            bad("capacity_w", "A positive whole number of W.")
    if "commissioning_date" in values:
        date = values["commissioning_date"]
        if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
            bad("commissioning_date", "A date is required.")
        elif date > today:
            bad("commissioning_date", "Cannot be in the future.")
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
            bad("storage_capacity_wh", "A storage device needs its capacity in Wh.")
        efficiency = values.get("round_trip_efficiency")
        if efficiency is None or _decimal_problem(efficiency, 0, 1, 4) or Decimal(efficiency) <= 0:
            bad("round_trip_efficiency", "A storage device needs an efficiency above 0, up to 1.")
    elif values.get("is_storage") is False:
        for name in ("storage_capacity_wh", "round_trip_efficiency"):
            if values.get(name) is not None:
                bad(name, "Only storage devices have this.")
    return problems


@dataclass(frozen=True)
class OwnerShare:
    """A validated co-owner: organisation, receiving account and share."""

    organisation: Organisation
    account: Account
    share: Fraction


def _owner_shares(owners: Sequence[Mapping[str, Any]]) -> list[OwnerShare]:
    """Check co-owners; every problem is reported per owner (extra.fields.owners)."""
    if not owners:
        raise errors.SharesInvalid("A device needs at least one owner.", fields={"owners": []})
    if len(owners) > MAX_OWNERS:
        raise errors.SharesInvalid(f"At most {MAX_OWNERS} co-owners.")
    organisation_ids = [owner.get("organisation_id") for owner in owners]
    account_ids = [owner.get("account_id") for owner in owners]
    organisations = Organisation.objects.in_bulk([i for i in organisation_ids if _is_int(i)])
    accounts = Account.objects.in_bulk([i for i in account_ids if _is_int(i)])
    problems: dict[str, dict[str, list[str]]] = {}
    result: list[OwnerShare] = []
    seen: set[int] = set()
    for position, owner in enumerate(owners):
        here: dict[str, list[str]] = {}
        organisation = organisations.get(owner.get("organisation_id"))
        account = accounts.get(owner.get("account_id"))
        if organisation is None:
            here["organisation"] = ["No such organisation."]
        elif organisation.status != Organisation.Status.APPROVED:
            here["organisation"] = ["The organisation is not approved."]
        elif organisation.pk in seen:
            here["organisation"] = ["Listed twice; give each co-owner once with its whole share."]
        if account is None:
            here["account"] = ["No such account."]
        elif organisation is not None and account.organisation_id != organisation.pk:
            here["account"] = ["The account does not belong to this organisation."]
        elif not account.is_open:
            here["account"] = ["The account is closed."]
        try:
            share = parse_share(owner.get("share"))
        except ValueError as exc:
            here["share"] = [str(exc)]
            share = None
        if here:
            problems[str(position)] = here
            continue
        seen.add(organisation.pk)
        result.append(OwnerShare(organisation=organisation, account=account, share=share))
    if problems:
        first = next(iter(problems.values()))
        name, messages = next(iter(first.items()))
        raise errors.OwnerInvalid(f"Co-owner: {name}: {messages[0]}", fields={"owners": problems})
    total = sum((owner.share for owner in result), Fraction(0))
    if total != 1:
        raise errors.SharesInvalid(
            f"Co-owner shares sum to {total}, not exactly 1.",
            fields={"owners": {"sum": [f"{total.numerator}/{total.denominator}"]}},
        )
    return result


def _owners_store(device: Device, owners: list[OwnerShare]) -> list[dict[str, Any]]:
    DeviceOwner.objects.filter(device=device).delete()
    DeviceOwner.objects.bulk_create(
        [
            DeviceOwner(
                device=device,
                organisation=owner.organisation,
                account=owner.account,
                share_numerator=owner.share.numerator,
                share_denominator=owner.share.denominator,
            )
            for owner in owners
        ]
    )
    return [
        {
            "organisation_id": owner.organisation.pk,
            "account_id": owner.account.pk,
            "share": owner.share,
        }
        for owner in owners
    ]


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
    organisation = Organisation.objects.select_for_update().filter(pk=organisation_id).first()
    if organisation is None or not user_can_act_for(actor, organisation):
        raise errors.NotDeviceOperator(organisation_id=organisation_id)
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
        raise _invalid(problems)
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


def _locked_device(device_id: int) -> Device:
    device = Device.objects.select_for_update().filter(pk=device_id).first()
    if device is None:
        raise errors.DeviceNotFound(device_id=device_id)
    return device


def _require_operator(actor: User, device: Device, *, or_issuing_body: bool = False) -> None:
    if user_can_act_for(actor, device.organisation):
        return
    if or_issuing_body and user_is_issuing_body(actor):
        return
    raise errors.NotDeviceOperator(device_id=device.pk)


DEVICE_EDITABLE = DEVICE_FIELDS


@transaction.atomic
def device_update(*, actor: User, device_id: int, **changes: Any) -> Device:
    """The producer edits a device while it is a draft or was rejected."""
    device = _locked_device(device_id)
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
        raise _invalid(problems)
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


@transaction.atomic
def device_owners_set(
    *, actor: User, device_id: int, owners: Sequence[Mapping[str, Any]]
) -> list[DeviceOwner]:
    """Replace a device's co-owners; the new shares must sum to exactly 1."""
    device = _locked_device(device_id)
    _require_operator(actor, device)
    if device.status == Device.Status.DECOMMISSIONED:
        raise errors.DeviceStatusConflict(status=device.status)
    shares = _owner_shares(owners)
    owner_data = _owners_store(device, shares)
    ledger_append(
        kind="device.owners_set",
        actor=actor,
        subject=device,
        data={"device_id": device.pk, "owners": owner_data},
    )
    return list(device.owners.select_related("organisation", "account"))


POLICY_FIELDS = ("require_signed_readings", "issuance_policy", "issuance_requires_approval")


@transaction.atomic
def device_policy_set(*, actor: User, device_id: int, reason: str, **policy: Any) -> Device:
    """The issuing body changes a device's reading and issuance policy."""
    _require_issuing_body(actor)
    unknown = sorted(set(policy) - set(POLICY_FIELDS))
    if unknown:
        raise _invalid({name: ["Not a policy field."] for name in unknown})
    if problems := device_problems(policy, today=timezone.now().date()):
        raise _invalid(problems)
    device = _locked_device(device_id)
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


@dataclass(frozen=True)
class Transition:
    """One row of the device lifecycle: from which states, to which, by whom."""

    sources: frozenset[str]
    target: str
    kind: str
    by: str  # "operator", "issuing_body" or "either"
    reason_required: bool


S = Device.Status
# The device lifecycle. Each row: action, the states it leaves, the state it enters, the
# ledger event, who may do it, and whether a reason is required.
DEVICE_TRANSITIONS: dict[str, Transition] = {
    action: Transition(frozenset(sources), target, kind, by, reason_required)
    for action, sources, target, kind, by, reason_required in [
        ("submit",       {S.DRAFT, S.REJECTED},             S.SUBMITTED,      "device.submitted",      "operator",     False),  # noqa: E501
        ("approve",      {S.SUBMITTED},                     S.APPROVED,       "device.approved",       "issuing_body", False),  # noqa: E501
        ("reject",       {S.SUBMITTED},                     S.REJECTED,       "device.rejected",       "issuing_body", True),   # noqa: E501
        ("activate",     {S.APPROVED},                      S.ACTIVE,         "device.activated",      "either",       False),  # noqa: E501
        ("suspend",      {S.APPROVED, S.ACTIVE},            S.SUSPENDED,      "device.suspended",      "issuing_body", True),   # noqa: E501
        ("reinstate",    {S.SUSPENDED},                     S.ACTIVE,         "device.reinstated",     "issuing_body", True),   # noqa: E501
        ("decommission", {S.APPROVED, S.ACTIVE, S.SUSPENDED}, S.DECOMMISSIONED, "device.decommissioned", "either",     True),   # noqa: E501
    ]
}  # fmt: skip
del S


@transaction.atomic
def device_transition(*, actor: User, device_id: int, action: str, reason: str = "") -> Device:
    """Move a device along DEVICE_TRANSITIONS, recording who, why and from which state."""
    transition = DEVICE_TRANSITIONS.get(action)
    if transition is None:
        raise InvalidInput(f"Unknown device action {action!r}.", fields={"action": [action]})
    device = _locked_device(device_id)
    if transition.by == "issuing_body":
        _require_issuing_body(actor)
    elif transition.by == "operator":
        _require_operator(actor, device)
    else:
        _require_operator(actor, device, or_issuing_body=True)
    reason = (reason or "").strip()
    if transition.reason_required and not reason:
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    if device.status not in transition.sources:
        raise errors.DeviceStatusConflict(
            f"Cannot {action} a device that is {device.status}.",
            status=device.status,
            allowed_from=sorted(transition.sources),
        )
    if action == "submit":
        # Owners' accounts may have closed since registration.
        _owner_shares(
            [
                {
                    "organisation_id": owner.organisation_id,
                    "account_id": owner.account_id,
                    "share": f"{owner.share_numerator}/{owner.share_denominator}",
                }
                for owner in device.owners.all()
            ]
        )
    previous = device.status
    now = timezone.now()
    device.status = transition.target
    device.status_reason = reason
    device.status_changed_at = now
    fields = ["status", "status_reason", "status_changed_at", "updated_at"]
    if transition.target == Device.Status.APPROVED and device.approved_at is None:
        device.approved_at = now
        fields.append("approved_at")
    device.save(update_fields=fields)
    ledger_append(
        kind=transition.kind,
        actor=actor,
        subject=device,
        data={"device_id": device.pk, "from": previous, "to": device.status, "reason": reason},
    )
    return device


def device_submit(*, actor: User, device_id: int, reason: str = "") -> Device:
    """The producer submits a draft (or rejected) device for approval."""
    return device_transition(actor=actor, device_id=device_id, action="submit", reason=reason)


def device_approve(*, actor: User, device_id: int, reason: str = "") -> Device:
    """The issuing body approves a submitted device."""
    return device_transition(actor=actor, device_id=device_id, action="approve", reason=reason)


def device_reject(*, actor: User, device_id: int, reason: str) -> Device:
    """The issuing body rejects a submitted device (the producer may fix and resubmit)."""
    return device_transition(actor=actor, device_id=device_id, action="reject", reason=reason)


def device_activate(*, actor: User, device_id: int, reason: str = "") -> Device:
    """The producer (or issuing body) puts an approved device into operation."""
    return device_transition(actor=actor, device_id=device_id, action="activate", reason=reason)


def device_suspend(*, actor: User, device_id: int, reason: str) -> Device:
    """The issuing body suspends a device: no readings, no issuance."""
    return device_transition(actor=actor, device_id=device_id, action="suspend", reason=reason)


def device_reinstate(*, actor: User, device_id: int, reason: str) -> Device:
    """The issuing body lifts a suspension."""
    return device_transition(actor=actor, device_id=device_id, action="reinstate", reason=reason)


def device_decommission(*, actor: User, device_id: int, reason: str) -> Device:
    """The device leaves service for good."""
    return device_transition(actor=actor, device_id=device_id, action="decommission", reason=reason)


# -- meters --------------------------------------------------------------------------------


def _aligned(moment: dt.datetime, device: Device) -> bool:
    return not moment.microsecond and int(moment.timestamp()) % (device.interval_minutes * 60) == 0


def _public_key(value: str | bytes | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        return b64(decode_public_key(value))
    except (ValueError, TypeError):
        raise errors.MeterKeyInvalid(fields={"public_key": ["32 bytes, base64 or hex."]}) from None


def _locked_meter(meter_id: int) -> tuple[Device, Meter]:
    device_id = Meter.objects.filter(pk=meter_id).values_list("device_id", flat=True).first()
    if device_id is None:
        raise errors.MeterNotFound(meter_id=meter_id)
    device = _locked_device(device_id)
    meter = Meter.objects.select_for_update().get(pk=meter_id)
    return device, meter


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
    device = _locked_device(device_id)
    _require_operator(actor, device)
    if device.status == Device.Status.DECOMMISSIONED:
        raise errors.DeviceStatusConflict(status=device.status)
    if not isinstance(serial, str) or not SERIAL_FORMAT.match(serial):
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
    device, meter = _locked_meter(meter_id)
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
    device, meter = _locked_meter(meter_id)
    _require_operator(actor, device, or_issuing_body=True)
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    _check_aware("at", at)
    if not _is_int(counter_wh) or not 0 <= counter_wh < MAX_SAFE_INTEGER:
        raise _invalid({"counter_wh": ["A non-negative whole number of Wh."]})
    if not _aligned(at, device):
        raise _invalid({"at": ["Must be aligned to the device's reading interval (UTC)."]})
    if at > timezone.now():
        raise _invalid({"at": ["Cannot be in the future."]})
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
    device, meter = _locked_meter(meter_id)
    _require_operator(actor, device, or_issuing_body=True)
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    if meter.status != Meter.Status.ACTIVE:
        raise errors.MeterStatusConflict(status=meter.status)
    _check_aware("at", at)
    if not _aligned(at, device):
        raise _invalid({"at": ["Must be aligned to the device's reading interval (UTC)."]})
    if at > timezone.now():
        raise _invalid({"at": ["Cannot be in the future."]})
    if meter.installed_at is not None and at <= meter.installed_at:
        raise _invalid({"at": ["Must be after the old meter was installed."]})
    if not isinstance(new_serial, str) or not SERIAL_FORMAT.match(new_serial):
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
    MeterKey.objects.filter(meter=meter, valid_to__isnull=True).update(valid_to=at)
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
    device, meter = _locked_meter(meter_id)
    _require_operator(actor, device, or_issuing_body=True)
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    if meter.status != Meter.Status.ACTIVE:
        raise errors.MeterStatusConflict(status=meter.status)
    _check_aware("at", at)
    if at > timezone.now():
        raise _invalid({"at": ["Cannot be in the future."]})
    if any(
        model.objects.filter(meter=meter, end__gt=at).exists()
        for model in (Reading, PendingReading)
    ):
        raise errors.MeterStatusConflict("The meter has readings after `at`.")
    MeterKey.objects.filter(meter=meter, valid_to__isnull=True).update(valid_to=at)
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


# -- readings ------------------------------------------------------------------------------


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
    devices = {
        device.pk: device
        for device in Device.objects.select_for_update()
        .filter(pk__in=ingest.device_ids())
        .order_by("pk")
    }
    meters = {
        meter.pk: meter
        for meter in Meter.objects.select_for_update()
        .filter(pk__in=ingest.meter_ids())
        .order_by("pk")
    }
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
    if ingest.wait_for_signatures():
        raise _rejection(ingest)  # rolls the batch back
    if batch.status == ReadingBatch.Status.ACCEPTED:
        for hook in READINGS_ACCEPTED_HOOKS:
            hook(batch)
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
    _insert_readings(batch, accepted, held=held)
    for meter_id, (time, value) in outcome.counter_updates.items():
        meter = meters[meter_id]
        meter.counter_at, meter.counter_wh = time, value
        meter.save(update_fields=["counter_at", "counter_wh"])
    pending = ledger_append(
        kind="reading_batch.held" if held else "reading_batch.accepted",
        actor=actor,
        subject=[batch, *(("device", device_id) for device_id in device_ids)],
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


def _insert_readings(batch: ReadingBatch, entries: list[Entry], *, held: bool) -> None:
    """Insert the batch's rows: COPY on PostgreSQL, bulk_create elsewhere."""
    model = PendingReading if held else Reading
    if connection.vendor == "postgresql":
        _copy_readings(model, batch, entries)
        return
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


def _held_batch(batch_id: int) -> ReadingBatch:
    batch = ReadingBatch.objects.select_for_update().filter(pk=batch_id).first()
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
    pending = PendingReading._meta
    reading = Reading._meta
    quote = connection.ops.quote_name
    columns = [pending.get_field(name.removesuffix("_id")).column for name in _COPY_COLUMNS]
    column_sql = ", ".join(quote(c) for c in columns)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(reading.db_table)} ({column_sql}) "  # noqa: S608
                f"SELECT {column_sql} FROM {quote(pending.db_table)} WHERE "
                f"{quote(pending.get_field('batch').column)} = %s",
                [batch.pk],
            )
            moved = cursor.rowcount
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
    for hook in READINGS_ACCEPTED_HOOKS:
        hook(batch)
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
