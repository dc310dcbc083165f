"""A shaped PPA (`ppa_shaped`): the buyer takes a fixed volume of the device's output each
hour, a flat baseload or a 24-hour profile, instead of a share of what it produced.

Terms: as a pay-as-produced PPA's, with `shape` instead of `share_bp`:
`{"baseload_wh": 5000}` (the same Wh every hour) or `{"hourly_wh": [24 integers]}` (the
Wh of each UTC hour of the day, 0 allowed, not all 0). A period of the issuance wants the
shape's Wh of each hour it overlaps, times the seconds it overlaps / 3,600, rounded down
(an hourly certificate wants the hour's Wh; a quarter hour a quarter of it).

Each period, the shaped PPAs on the device's output take in contract order, each the
smaller of what it wants and what is left of the seller's units of that period; what the
output did not cover is the period's `shortfall_wh` (recorded, not charged: the buyer pays
for the Wh it received). What no contract took stays with the seller. A shape takes a
volume, not a share, so a shaped PPA and a share contract (pay-as-produced PPA, standing
transfer) never claim the same output at the same time (`overlapping_claims`, scope
`shape`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from contracts.errors import InvalidTerms, TermsUnmet

MAX_HOURLY_WH = 10_000_000_000  # 10 GWh in one hour
HOUR_SECONDS = 3_600


def validate_shape(shape: Any) -> dict[str, Any]:
    if not isinstance(shape, dict) or len(shape) != 1:
        raise InvalidTerms(fields={"shape": ["one of baseload_wh or hourly_wh"]})
    ((name, value),) = shape.items()
    if name == "baseload_wh":
        if _whole(value, 1):
            return {"baseload_wh": value}
        raise InvalidTerms(fields={"shape.baseload_wh": [f"a whole number 1 to {MAX_HOURLY_WH}"]})
    if name == "hourly_wh":
        if isinstance(value, list) and len(value) == 24 and all(_whole(v, 0) for v in value):
            if any(value):
                return {"hourly_wh": list(value)}
            raise TermsUnmet(fields={"shape.hourly_wh": ["not all 0"]})  # beyond the schema
        raise InvalidTerms(
            fields={"shape.hourly_wh": [f"24 whole numbers 0 to {MAX_HOURLY_WH}, not all 0"]}
        )
    raise InvalidTerms(fields={f"shape.{name}": ["unknown field"]})


def _whole(value: Any, low: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= MAX_HOURLY_WH


def wanted_wh(shape: dict[str, Any], start: dt.datetime, end: dt.datetime) -> int:
    """The Wh the shape wants of the period [start, end) (UTC hours), rounded down."""
    total = 0  # in Wh x seconds
    at, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    while at < end:
        hour_end = at.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        upto = min(end, hour_end)
        hourly = shape.get("baseload_wh")
        if hourly is None:
            hourly = shape["hourly_wh"][at.hour]
        total += hourly * int((upto - at).total_seconds())
        at = upto
    return total // HOUR_SECONDS


def allocate_shaped(contract: Any, base: list[tuple], group: list[Any]) -> tuple[list, list]:
    """(periods [start, end, wh] the contract takes, shape rows [start, end, wanted, taken]):
    the shaped contracts covering each period take in contract order."""
    out, rows = [], []
    for period_start, period_end, volume in base:
        covering = [
            c for c in group if "shape" in c.terms and c.start_at <= period_start < c.end_at
        ]
        if contract not in covering:
            continue
        left = volume
        for other in covering:
            want = wanted_wh(other.terms["shape"], period_start, period_end)
            take = min(want, left)
            left -= take
            if other.pk == contract.pk:
                rows.append([period_start, period_end, want, take])
                if take:
                    out.append((period_start, period_end, take))
                break
    return out, rows
