"""OCPI 2.2.1 tariffs: validation and pricing of hourly charging periods, in integer minor units.

A tariff is a list of elements; each element has price components (ENERGY per kWh, TIME per
hour of charging, FLAT per session; prices excluding VAT in major units, e.g. "0.35") and
optional restrictions (`start_time` / `end_time` on whole hours, `day_of_week`). As OCPI says,
for each dimension the first element whose restrictions hold and which has a component of
that dimension prices it. Periods are clock hours (the restriction boundaries lie on them),
and restrictions read the station's local time (its grid area's time zone).

Rounding: every period's cost is computed exactly (a fraction of a minor unit); the session's
total per dimension is the exact sum rounded half up to a minor unit, and each period's
amount is the rounded running total minus the one before, so the periods add up to the total
to the unit and no period is ever negative. Negative prices are refused when the tariff is
created, so no bill can be negative. `step_size` must be 1 (Wh, second, session): billing in
larger steps is not supported and refused rather than ignored.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from charging import errors
from registry.countries import currency_code_valid

DIMENSIONS = ("ENERGY", "TIME", "FLAT")
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
SUPPORTED_RESTRICTIONS = {"start_time", "end_time", "day_of_week"}
# ISO 4217 minor-unit exponents that differ from 2 (the currencies a CPO is likely to bill in).
EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "HUF": 2, "BHD": 3, "KWD": 3, "JOD": 3}
WHOLE_HOUR = re.compile(r"^([01][0-9]|2[0-3]):00$")
MAX_PRICE = Decimal(1_000_000)
"""A component's price, per kWh, hour or session: a decimal of any exponent would make
pricing take minutes (Fraction expands it) and a bill overflow its columns."""
MAX_AMOUNT_MINOR = 2**63 - 1  # what a bill's amount columns (bigint) hold


def currency_exponent(currency: str) -> int:
    return EXPONENTS.get(currency, 2)


def _bad(detail: str, path: str) -> errors.InvalidTariff:
    return errors.InvalidTariff(detail, fields={path: [detail]})


def tariff_elements_clean(elements: Any, currency: str) -> list[dict[str, Any]]:
    """Validate OCPI tariff elements; return them in canonical form (prices as strings)."""
    if not currency_code_valid(currency):
        raise _bad("currency must be an ISO 4217 code", "currency")
    if not isinstance(elements, list) or not elements:
        raise _bad("at least one tariff element", "elements")
    exponent = currency_exponent(currency)
    clean: list[dict[str, Any]] = []
    for i, element in enumerate(elements):
        path = f"elements[{i}]"
        if not isinstance(element, dict) or not element.get("price_components"):
            raise _bad("an element needs price_components", path)
        if not isinstance(element["price_components"], list):
            raise _bad("price_components must be a list", path)
        components = []
        for j, component in enumerate(element["price_components"]):
            cpath = f"{path}.price_components[{j}]"
            if not isinstance(component, dict) or component.get("type") not in DIMENSIONS:
                raise _bad(f"type must be one of {', '.join(DIMENSIONS)}", cpath)
            try:
                price = Decimal(str(component.get("price")))
            except InvalidOperation:
                raise _bad("price must be a decimal number", cpath) from None
            if not price.is_finite():
                raise _bad("price must be a decimal number", cpath)
            if price < 0:
                raise errors.NegativeTariff(fields={cpath: ["price must not be negative"]})
            if price > MAX_PRICE:
                raise _bad(f"price must be at most {MAX_PRICE}", cpath)
            if price.as_tuple().exponent < -(exponent + 4):
                raise _bad("at most 4 decimals beyond the currency's minor unit", cpath)
            if component.get("step_size", 1) != 1:
                raise _bad("only step_size 1 is supported", cpath)
            components.append({"type": component["type"], "price": str(price), "step_size": 1})
        restrictions = element.get("restrictions") or {}
        if not isinstance(restrictions, dict):
            raise _bad("restrictions must be an object", path)
        unknown = set(restrictions) - SUPPORTED_RESTRICTIONS
        if unknown:
            raise _bad(f"unsupported restrictions: {', '.join(sorted(unknown))}", path)
        for key in ("start_time", "end_time"):
            if key in restrictions and not WHOLE_HOUR.fullmatch(str(restrictions[key])):
                raise _bad(f"{key} must be a whole hour, HH:00", f"{path}.restrictions")
        days = restrictions.get("day_of_week")
        if days is not None and (
            not isinstance(days, list) or not days or any(d not in DAYS for d in days)
        ):
            raise _bad("day_of_week: a list of MONDAY..SUNDAY", f"{path}.restrictions")
        item: dict[str, Any] = {"price_components": components}
        if restrictions:
            item["restrictions"] = dict(restrictions)
        clean.append(item)
    return clean


def _applies(restrictions: dict[str, Any], local: dt.datetime) -> bool:
    days = restrictions.get("day_of_week")
    if days and DAYS[local.weekday()] not in days:
        return False
    start, end = restrictions.get("start_time"), restrictions.get("end_time")
    if start is None and end is None:
        return True
    hour = local.hour
    lo = int(start[:2]) if start else 0
    hi = int(end[:2]) if end else 24
    if lo <= hi:
        return lo <= hour < hi
    return hour >= lo or hour < hi  # wraps midnight, e.g. 22:00-06:00


def _price_for(
    elements: list[dict[str, Any]], dimension: str, local: dt.datetime
) -> Fraction | None:
    for element in elements:
        if not _applies(element.get("restrictions", {}), local):
            continue
        for component in element["price_components"]:
            if component["type"] == dimension:
                price = Decimal(component["price"])
                if price > MAX_PRICE:  # a tariff stored before prices were bounded
                    raise errors.BillOutOfRange()
                return Fraction(price)
    return None


@dataclass(frozen=True)
class Period:
    """One clock hour (or part of one) of a session: its energy and charging time."""

    start: dt.datetime
    end: dt.datetime
    energy_wh: int


def _round_half_up(value: Fraction) -> int:
    return int((value * 2 + 1) // 2)


def _spread(exact: list[Fraction]) -> list[int]:
    """Per-period amounts whose running totals are the rounded exact running totals."""
    out, running, before = [], Fraction(0), 0
    for amount in exact:
        running += amount
        now = _round_half_up(running)
        out.append(now - before)
        before = now
    return out


@dataclass(frozen=True)
class Priced:
    energy_minor: int
    time_minor: int
    flat_minor: int
    periods: list[dict[str, Any]]

    @property
    def total_minor(self) -> int:
        return self.energy_minor + self.time_minor + self.flat_minor


def price_periods(
    *, elements: list[dict[str, Any]], currency: str, periods: list[Period], time_zone: str
) -> Priced:
    """Price hourly periods with a clean tariff (see the module docstring for the rounding)."""
    scale = 10 ** currency_exponent(currency)
    zone = ZoneInfo(time_zone)
    energy_exact, time_exact = [], []
    for period in periods:
        local = period.start.astimezone(zone)
        per_kwh = _price_for(elements, "ENERGY", local) or Fraction(0)
        per_hour = _price_for(elements, "TIME", local) or Fraction(0)
        seconds = int((period.end - period.start).total_seconds())
        energy_exact.append(per_kwh * scale * period.energy_wh / 1000)
        time_exact.append(per_hour * scale * seconds / 3600)
    flat = Fraction(0)
    if periods:
        flat = _price_for(elements, "FLAT", periods[0].start.astimezone(zone)) or Fraction(0)
    energy, time = _spread(energy_exact), _spread(time_exact)
    rows = [
        {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "energy_wh": period.energy_wh,
            "seconds": int((period.end - period.start).total_seconds()),
            "energy_minor": energy[i],
            "time_minor": time[i],
        }
        for i, period in enumerate(periods)
    ]
    priced = Priced(
        energy_minor=sum(energy),
        time_minor=sum(time),
        flat_minor=_round_half_up(flat * scale),
        periods=rows,
    )
    if priced.total_minor > MAX_AMOUNT_MINOR:
        raise errors.BillOutOfRange(total_minor=str(priced.total_minor))
    return priced


def hourly_periods(samples: list[tuple[dt.datetime, int]]) -> list[Period]:
    """Split a session's (time, meter Wh) samples into clock hours.

    Energy between two samples is spread linearly over time; the meter reading at each
    hour boundary is the interpolated value rounded down, so the hours add up exactly to
    the session's energy (last minus first sample) in whole Wh.
    """
    if len(samples) < 2:
        return []
    start, end = samples[0][0], samples[-1][0]
    pairs = list(itertools.pairwise(samples))
    at = 0  # the pair the last boundary fell in: boundaries and samples both go forward

    def reading_at(t: dt.datetime) -> int:
        nonlocal at
        while at < len(pairs) and pairs[at][1][0] < t:
            at += 1
        if at == len(pairs):
            return samples[-1][1]
        (t0, w0), (t1, w1) = pairs[at]
        if t1 == t0:
            return w1
        span = (t1 - t0).total_seconds()
        return w0 + int((w1 - w0) * Fraction((t - t0).total_seconds()) / Fraction(span))

    bounds = [start]
    hour = start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    while hour < end:
        bounds.append(hour)
        hour += dt.timedelta(hours=1)
    bounds.append(end)
    readings = [samples[0][1], *[reading_at(b) for b in bounds[1:-1]], samples[-1][1]]
    return [
        Period(start=bounds[i], end=bounds[i + 1], energy_wh=readings[i + 1] - readings[i])
        for i in range(len(bounds) - 1)
        if bounds[i + 1] > bounds[i]
    ]
