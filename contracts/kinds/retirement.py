"""Standing retirement: every month, retire what the account holds for that month's
consumption (certificates produced in the month, oldest first), up to a cap: the terms'
`max_wh_per_month` and, once the consumers app registers one, the metered consumption."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q

from certificates.models import Bundle, Retirement
from contracts.errors import InvalidTerms
from contracts.kinds.base import COUNTRY, Plan, TermsReader, Validated, month_bounds
from contracts.models import Contract
from registry.hooks import Hook

STANDING_RETIREMENT = "standing_retirement"
MAX_WH = 2**53

# Callable[[int, datetime, datetime], int | None]: the Wh an account's holder consumed in
# [start, end), or None when it does not know. The consumers app registers its meters here.
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
        },
    )
    account = read.account("account")
    purpose = read.text("purpose")
    if purpose not in Retirement.Purpose.values:
        raise InvalidTerms(fields={"purpose": sorted(Retirement.Purpose.values)})
    clean: dict[str, Any] = {
        "account": account.number,
        "beneficiary_name": read.text("beneficiary_name"),
        "beneficiary_country": read.text("beneficiary_country", COUNTRY),
        "purpose": purpose,
    }
    location = read.text("location", required=False)
    if location:
        clean["location"] = location
    cap = read.integer("max_wh_per_month", 1, MAX_WH, required=False)
    if cap is not None:
        clean["max_wh_per_month"] = cap
    return Validated(
        terms=clean, parties=[(account.organisation_id, "holder")], source_account_id=account.pk
    )


def consumption_wh(account_id: int, start: dt.datetime, end: dt.datetime) -> int | None:
    for lookup in CONSUMPTION_LOOKUPS:
        found = lookup(account_id, start, end)
        if found is not None:
            return found
    return None


def plan_month(contract: Contract, period: str) -> Plan:
    start, end = month_bounds(period)
    trigger = f"period:{period}"
    caps = [
        contract.terms.get("max_wh_per_month"),
        consumption_wh(contract.source_account_id, start, end),
    ]
    caps = [cap for cap in caps if cap is not None]
    cap = min(caps) if caps else None
    rows = (
        Bundle.objects.filter(
            account_id=contract.source_account_id,
            status=Bundle.Status.ACTIVE,
            period_start__gte=max(start, contract.start_at),
            period_start__lt=min(end, contract.end_at),
        )
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gt=end.date()))
        .order_by("period_start", "pk")
        .values_list("pk", "unit_start", "unit_end")
    )
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
