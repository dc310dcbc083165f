"""Standing retirement: every month, retire what the account holds for that month's
consumption, up to the terms' `max_wh_per_month`.

Without metered consumption (no lookup knows the account), the month's certificates are
retired oldest first. When a consumption lookup (the consumers app: a household's site
import meters) returns the month hour by hour, each hour's certificates are retired only
against that hour's consumption (EnergyTag's granular matching): min(held, consumed) per
hour, one retirement per matched hour with that hour as its consumption period; an hour
without complete readings retires nothing and is listed with its reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q

from certificates.models import Bundle, Retirement
from contracts.errors import InvalidTerms
from contracts.kinds.base import Plan, TermsReader, Validated, month_bounds
from contracts.models import Contract
from registry.hooks import Hook

STANDING_RETIREMENT = "standing_retirement"
MAX_WH = 2**53

HOUR = dt.timedelta(hours=1)
NO_READINGS = "no_readings"

# Callable[..., dict[datetime, int | None] | None], called with keywords account_id, start,
# end, metering_point (the terms' site, or None): the Wh consumed in every hour of
# [start, end) (None for an hour without complete readings), or None when the lookup does
# not know the account. It may raise a DomainError (no consent): the execution fails with
# its code. The consumers app registers here, by name (it may not import contracts).
CONSUMPTION_LOOKUPS = Hook("contracts.consumption_lookups")


def validate(terms: Any) -> Validated:
    read = TermsReader(
        terms,
        {
            "account",
            "beneficiary_name",
            "beneficiary_country",
            "purpose",
            "location",
            "max_wh_per_month",
            "metering_point",
        },
    )
    account = read.account("account")
    purpose = read.text("purpose")
    if purpose not in Retirement.Purpose.values:
        raise InvalidTerms(fields={"purpose": sorted(Retirement.Purpose.values)})
    clean: dict[str, Any] = {
        "account": account.number,
        "beneficiary_name": read.text("beneficiary_name"),
        "beneficiary_country": read.country("beneficiary_country"),
        "purpose": purpose,
    }
    location = read.text("location", required=False)
    if location:
        clean["location"] = location
    cap = read.integer("max_wh_per_month", 1, MAX_WH, required=False)
    if cap is not None:
        clean["max_wh_per_month"] = cap
    metering_point = read.text("metering_point", required=False)
    if metering_point:
        if not (len(metering_point) == 18 and metering_point.isdigit()):
            raise InvalidTerms(fields={"metering_point": ["18 digits (EAN-18 / GSRN)"]})
        clean["metering_point"] = metering_point
    return Validated(
        terms=clean, parties=[(account.organisation_id, "holder")], source_account_id=account.pk
    )


def consumption_hourly(
    account_id: int, start: dt.datetime, end: dt.datetime, metering_point: str | None = None
) -> dict[dt.datetime, int | None] | None:
    for lookup in CONSUMPTION_LOOKUPS:
        found = lookup(account_id=account_id, start=start, end=end, metering_point=metering_point)
        if found is not None:
            return found
    return None


def _held(contract: Contract, start: dt.datetime, end: dt.datetime):
    return (
        Bundle.objects.filter(
            account_id=contract.source_account_id,
            status=Bundle.Status.ACTIVE,
            period_start__gte=max(start, contract.start_at),
            period_start__lt=min(end, contract.end_at),
        )
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gt=end.date()))
        .order_by("period_start", "pk")
    )


def plan_month(contract: Contract, period: str) -> Plan:
    start, end = month_bounds(period)
    trigger = f"period:{period}"
    hourly = consumption_hourly(
        contract.source_account_id, start, end, contract.terms.get("metering_point")
    )
    if hourly is not None:
        return _plan_hourly(contract, trigger, start, end, hourly)
    if contract.terms.get("metering_point"):
        # A named site that no lookup knows: retiring unmatched would claim a consumption
        # nobody measured.
        raise InvalidTerms(
            "No metered consumption is known for this metering point.",
            fields={"metering_point": ["a confirmed site with import meters"]},
        )
    cap = contract.terms.get("max_wh_per_month")
    rows = _held(contract, start, end).values_list("pk", "unit_start", "unit_end")
    items: list[tuple[int, int]] = []
    total = 0
    for pk, unit_start, unit_end in rows:
        volume = unit_end - unit_start
        if cap is not None:
            volume = min(volume, cap - total)
        if volume <= 0:
            break
        items.append((pk, volume))
        total += volume
    summary = {
        "kind": contract.kind,
        "trigger": trigger,
        "version": contract.version,
        "account": contract.terms["account"],
        "consumption_start": start,
        "consumption_end": end,
        "cap_wh": cap,
        "volume_wh": total,
        "bundles": len(items),
    }
    return Plan(trigger=trigger, summary=summary, retirements=items)


def _plan_hourly(
    contract: Contract,
    trigger: str,
    start: dt.datetime,
    end: dt.datetime,
    consumed: dict[dt.datetime, int | None],
) -> Plan:
    """Each hour's certificates (periods within that hour) against that hour's consumption.

    The summary (a public ledger event) names only what was retired per hour and the hours
    skipped with their reason, never the metered consumption itself."""
    cap = contract.terms.get("max_wh_per_month")
    by_hour: dict[dt.datetime, list[tuple[int, int]]] = {}
    for pk, unit_start, unit_end, p_start, p_end in _held(contract, start, end).values_list(
        "pk", "unit_start", "unit_end", "period_start", "period_end"
    ):
        hour = p_start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        if p_end <= hour + HOUR:  # longer certificates match no single hour
            by_hour.setdefault(hour, []).append((pk, unit_end - unit_start))
    hourly: list[tuple[dt.datetime, list[tuple[int, int]]]] = []
    matched: list[list[Any]] = []
    skipped: list[list[Any]] = []
    total = 0
    for hour in sorted(by_hour):
        wh = consumed.get(hour)
        if wh is None:
            skipped.append([hour, NO_READINGS])
            continue
        want = wh if cap is None else min(wh, cap - total)
        items = []
        for pk, volume in by_hour[hour]:
            volume = min(volume, want - sum(v for _pk, v in items))
            if volume <= 0:
                break
            items.append((pk, volume))
        if items:
            retired = sum(v for _pk, v in items)
            hourly.append((hour, items))
            matched.append([hour, retired])
            total += retired
    summary = {
        "kind": contract.kind,
        "trigger": trigger,
        "version": contract.version,
        "account": contract.terms["account"],
        "matching": "hourly",
        "consumption_start": start,
        "consumption_end": end,
        "cap_wh": cap,
        "volume_wh": total,
        "bundles": sum(len(items) for _hour, items in hourly),
        "hours_retired": matched,
        "hours_skipped": skipped,
    }
    if contract.terms.get("metering_point"):
        summary["metering_point"] = contract.terms["metering_point"]
    return Plan(trigger=trigger, summary=summary, hourly_retirements=hourly)
