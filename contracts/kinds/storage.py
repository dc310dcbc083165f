"""Storage balancing: a battery charges from surplus and discharges into deficits, and its
certificates follow EnergyTag's storage rules.

Each UTC day (trigger `day:YYYY-MM-DD`), in order, hour by hour:

- **Charge** (the battery's `consumption` meters): that hour's certificates in the
  charge account (periods inside the hour, not storage certificates themselves) are
  cancelled into the battery, oldest first, up to the metered charge. Each cancelled piece
  becomes a layer of stored energy carrying its origin; charge no certificate covers is a
  layer without origin (never certified).
- **Losses**: a layer can deliver `charged_wh * efficiency_ppm // 1_000_000` Wh; the rest
  is loss and never becomes a certificate.
- **Discharge** (the battery's `storage` meters), after the hour's charge: drawn from the
  layers first in, first out; what certified layers deliver is issued as storage
  certificates of that hour, one bundle per origin; what uncertified layers deliver is
  not certified.
- The state of charge (the layers' remaining Wh) never goes negative nor above the
  capacity: a discharge beyond it, or a charge above the capacity, refuses the day.

The plan reads only; `contracts.services.storage` applies it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils import timezone

from assets.models import Device, DeviceOwner, Meter, Reading
from certificates.allocation import HOUR, floor_hour
from certificates.models import Bundle
from contracts import errors
from contracts.errors import InvalidTerms, TermsUnmet
from contracts.kinds.base import Plan, TermsReader, Validated
from contracts.models import Contract, StorageLayer, StorageState
from registry.errors import DomainError

STORAGE_BALANCING = "storage_balancing"
PPM = 1_000_000
MAX_WH = 2**53
DAY = dt.timedelta(days=1)
CHARGE_METERS = (Meter.Kind.CONSUMPTION,)
DISCHARGE_METERS = (Meter.Kind.STORAGE,)


def validate(terms: Any) -> Validated:
    read = TermsReader(
        terms, {"device_id", "charge_account", "storage_account", "efficiency_ppm", "capacity_wh"}
    )
    device_id = read.integer("device_id", 1, MAX_WH)
    device = Device.objects.filter(pk=device_id).first()
    if device is None:
        raise TermsUnmet(fields={"device_id": ["no such device"]})
    if not device.is_storage:
        raise TermsUnmet(fields={"device_id": ["not a storage device"]})
    if device.issuance_policy != Device.IssuancePolicy.MANUAL:
        # The contract certifies the discharge; an hourly issuance would certify it again
        # without its origin (and the day would then fail with double_issuance).
        raise TermsUnmet(fields={"device_id": ["the battery's issuance policy must be manual"]})
    charge = read.account("charge_account")
    store = read.account("storage_account")
    if not DeviceOwner.objects.filter(device_id=device_id, account_id=store.pk).exists():
        raise TermsUnmet(fields={"storage_account": ["receives none of the battery's output"]})
    efficiency = read.integer("efficiency_ppm", 1, PPM)
    capacity = read.integer("capacity_wh", 1, MAX_WH)
    if capacity > (device.storage_capacity_wh or 1):
        raise TermsUnmet(fields={"capacity_wh": ["at most the battery's storage capacity"]})
    clean = {
        "device_id": device_id,
        "charge_account": charge.number,
        "storage_account": store.number,
        "efficiency_ppm": efficiency,
        "capacity_wh": capacity,
    }
    parties = [(store.organisation_id, "storage_operator")]
    if charge.organisation_id != store.organisation_id:
        parties.append((charge.organisation_id, "charge_supplier"))
    return Validated(terms=clean, parties=parties, source_account_id=charge.pk, device_id=device_id)


def day_bounds(day: str) -> tuple[dt.datetime, dt.datetime]:
    """`YYYY-MM-DD` -> [midnight, next midnight) in UTC (years 1000-8999)."""
    if not re.fullmatch(r"[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}", day or ""):
        raise InvalidTerms("A period is a day, YYYY-MM-DD.", fields={"period": ["YYYY-MM-DD"]})
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise InvalidTerms(
            "A period is a day, YYYY-MM-DD.", fields={"period": ["YYYY-MM-DD"]}
        ) from None
    start = dt.datetime.combine(date, dt.time(0), tzinfo=dt.UTC)
    return start, start + DAY


def next_day_start(contract: Contract, state: StorageState | None) -> dt.datetime:
    """Where the battery's next day starts: after the last day executed on it (by this
    contract or an earlier one), and never before the contract's first whole day."""
    begin = contract.start_at.astimezone(dt.UTC)
    first = dt.datetime.combine(begin.date(), dt.time(0), tzinfo=dt.UTC)
    if first < begin:
        first += DAY
    if state is None or state.through is None:
        return first
    return max(state.through, first)


@dataclass
class NewLayer:
    """A layer the plan adds: from `source_bundle_id` (cancelled in part or whole)."""

    charged_at: dt.datetime
    charged_wh: int
    stored_wh: int
    remaining_wh: int
    source_bundle_id: int | None = None
    origin: dict[str, Any] | None = None


@dataclass
class StoragePlan:
    """What a day does to the battery, for `contracts.services.storage`."""

    store: list[tuple[int, int]] = field(default_factory=list)  # (bundle id, Wh)
    new_layers: list[NewLayer] = field(default_factory=list)
    draws: dict[int, int] = field(default_factory=dict)  # existing layer id -> Wh taken
    # (hour, [(Wh, layer key)]) where a layer key is ("old", id) or ("new", index).
    issue: list[tuple[dt.datetime, list[tuple[int, tuple[str, int]]]]] = field(default_factory=list)
    reading_ids: list[int] = field(default_factory=list)
    soc_end: int = 0
    end: dt.datetime | None = None


def _hourly(device_id: int, kinds, start, end) -> tuple[dict[dt.datetime, int], list[int], bool]:
    """Wh per hour of the device's meters of `kinds`, the reading ids, and whether the
    readings cover the whole day, each inside one hour (as issuance does: with several
    meters of a kind, a replaced one for instance, their union must cover it)."""
    rows = (
        Reading.objects.filter(
            device_id=device_id, meter__kind__in=kinds, start__lt=end, end__gt=start
        )
        .order_by("start", "meter_id")
        .values_list("pk", "start", "end", "wh")
    )
    per_hour: dict[dt.datetime, int] = {}
    ids: list[int] = []
    whole = True
    reach = start
    for pk, r_start, r_end, wh in rows:  # in start order
        hour = floor_hour(r_start)
        if r_start < start or r_end > end or r_end > hour + HOUR:
            whole = False
            continue
        per_hour[hour] = per_hour.get(hour, 0) + wh
        ids.append(pk)
        if r_start > reach:
            whole = False
        reach = max(reach, r_end)
    if reach < end:
        whole = False
    return per_hour, ids, whole


def _charge_bundles(contract: Contract, hours: set[dt.datetime]) -> dict[dt.datetime, list[Bundle]]:
    """The charge account's live, unexpired, non-storage certificates of each charging
    hour (periods inside the hour), oldest first: one query for the day."""
    today = timezone.now().astimezone(dt.UTC).date()  # an expired certificate cannot charge
    by_hour: dict[dt.datetime, list[Bundle]] = {}
    if not hours:
        return by_hour
    rows = (
        Bundle.objects.filter(
            account_id=contract.source_account_id,
            status=Bundle.Status.ACTIVE,
            period_start__gte=min(hours),
            period_start__lt=max(hours) + HOUR,
            issuance__is_storage=False,
        )
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gt=today))
        .select_related("issuance")
        .order_by("period_start", "pk")
    )
    for bundle in rows:
        hour = floor_hour(bundle.period_start)
        if hour in hours and bundle.period_end <= hour + HOUR:
            by_hour.setdefault(hour, []).append(bundle)
    return by_hour


def _refuse(plan: Plan, error: DomainError) -> Plan:
    plan.refusal = error
    plan.summary["refused"] = {"code": error.code, **error.extra}
    return plan


def plan_day(contract: Contract, day: str) -> Plan:
    """What the contract does for one day; reads only (the state row is locked by the
    caller when it executes)."""
    start, end = day_bounds(day)
    terms = contract.terms
    device_id = contract.device_id
    ppm = terms["efficiency_ppm"]
    capacity = terms["capacity_wh"]
    trigger = f"day:{day}"
    state = StorageState.objects.filter(device_id=device_id).first()
    soc = state.soc_wh if state else 0
    summary: dict[str, Any] = {
        "kind": contract.kind,
        "trigger": trigger,
        "version": contract.version,
        "device_id": device_id,
        "charge_account": terms["charge_account"],
        "storage_account": terms["storage_account"],
        "efficiency_ppm": ppm,
        "capacity_wh": capacity,
        "soc_start_wh": soc,
    }
    plan = Plan(trigger=trigger, summary=summary)
    expected = next_day_start(contract, state)
    if start != expected:
        return _refuse(
            plan,
            errors.StoragePeriodOutOfOrder(
                device_id=device_id, next_day=expected.date().isoformat()
            ),
        )
    charged, _charge_ids, charge_whole = _hourly(device_id, CHARGE_METERS, start, end)
    discharged, discharge_ids, discharge_whole = _hourly(device_id, DISCHARGE_METERS, start, end)
    if not (charge_whole and discharge_whole):
        missing = [
            name
            for name, whole in (("charge", charge_whole), ("discharge", discharge_whole))
            if not whole
        ]
        return _refuse(plan, errors.StorageReadingsIncomplete(device_id=device_id, meters=missing))
    # Open layers, oldest first: [key, remaining, certified origin or None].
    queue: list[list[Any]] = [
        [("old", pk), remaining, bundle_id]
        for pk, remaining, bundle_id in StorageLayer.objects.filter(
            device_id=device_id, remaining_wh__gt=0
        )
        .order_by("pk")
        .values_list("pk", "remaining_wh", "charged_bundle_id")
    ]
    sp = StoragePlan(reading_ids=discharge_ids, end=end)
    charging = _charge_bundles(contract, {h for h, wh in charged.items() if wh})
    hours: list[list[Any]] = []
    totals = {"charged_wh": 0, "cancelled_wh": 0, "stored_wh": 0, "loss_wh": 0}
    totals |= {"discharged_wh": 0, "certified_wh": 0}
    hour = start
    while hour < end:
        charge = charged.get(hour, 0)
        cancelled = stored = 0
        if charge:
            need = charge
            for bundle in charging.get(hour, []):
                if not need:
                    break
                take = min(need, bundle.unit_end - bundle.unit_start)
                need -= take
                sp.store.append((bundle.pk, take))
                layer = NewLayer(
                    charged_at=hour,
                    charged_wh=take,
                    stored_wh=take * ppm // PPM,
                    remaining_wh=take * ppm // PPM,
                    source_bundle_id=bundle.pk,
                    origin={
                        "origin_device_id": bundle.device_id,
                        "technology_code": bundle.issuance.technology_code,
                        "energy_source_code": bundle.issuance.energy_source_code,
                        "period_start": bundle.period_start,
                        "period_end": bundle.period_end,
                    },
                )
                cancelled += take
                stored += layer.stored_wh
                sp.new_layers.append(layer)
                queue.append([("new", len(sp.new_layers) - 1), layer.stored_wh, bundle.pk])
            if need:
                layer = NewLayer(hour, need, need * ppm // PPM, need * ppm // PPM)
                stored += layer.stored_wh
                sp.new_layers.append(layer)
                queue.append([("new", len(sp.new_layers) - 1), layer.stored_wh, None])
        if soc + stored > capacity:
            return _refuse(
                plan,
                errors.StorageCapacityExceeded(
                    device_id=device_id,
                    hour=hour.isoformat(),
                    soc_wh=soc,
                    stored_wh=stored,
                    capacity_wh=capacity,
                ),
            )
        soc += stored
        discharge = discharged.get(hour, 0)
        if discharge > soc:
            return _refuse(
                plan,
                errors.StorageDischargeExceedsCharge(
                    device_id=device_id, hour=hour.isoformat(), soc_wh=soc, discharge_wh=discharge
                ),
            )
        certified = 0
        pieces: list[tuple[int, tuple[str, int]]] = []
        need = discharge
        for entry in queue:
            if not need:
                break
            take = min(need, entry[1])
            if not take:
                continue
            entry[1] -= take
            need -= take
            if entry[0][0] == "old":
                sp.draws[entry[0][1]] = sp.draws.get(entry[0][1], 0) + take
            else:
                sp.new_layers[entry[0][1]].remaining_wh -= take
            if entry[2] is not None:
                pieces.append((take, entry[0]))
                certified += take
        soc -= discharge
        if pieces:
            sp.issue.append((hour, pieces))
        if charge or discharge:
            hours.append([hour, charge, cancelled, stored, discharge, certified, soc])
        totals["charged_wh"] += charge
        totals["cancelled_wh"] += cancelled
        totals["stored_wh"] += stored
        totals["loss_wh"] += charge - stored
        totals["discharged_wh"] += discharge
        totals["certified_wh"] += certified
        hour += HOUR
    sp.soc_end = soc
    summary |= totals | {"soc_end_wh": soc, "hours": hours}
    summary["hours_columns"] = [
        "hour",
        "charged_wh",
        "cancelled_wh",
        "stored_wh",
        "discharged_wh",
        "certified_wh",
        "soc_wh",
    ]
    plan.storage = sp
    return plan
