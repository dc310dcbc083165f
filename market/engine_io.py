"""Between order rows and the pure engine (market/matching.py): conversions, and the
resting orders an incoming one could reach, read under the book's lock.

The book is read in priority order, in chunks, and only as far as needed: orders that do
not cross the incoming price, or whose certificates (or criteria) cannot match, are left
out by the query itself, so placement costs the same with 10^2 or 10^5 resting orders.
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Mapping
from typing import Any

from django.db import connection

from assets.models import Device
from certificates.models import Bundle
from market import errors, matching
from market.models import Market, Order
from registry import model_rows as rows

FIRST_CHUNK = 16  # most orders trade with the first few makers
# A bid's oldest acceptable certificate, in days: a century is older than any certificate
# (and `now - max_age_days` stays a date; the column is a 32-bit integer).
MAX_AGE_DAYS = 36_525
CHUNK = 64
_Row = namedtuple("_Row", rows.attnames(Order))
_CRITERIA = (
    "technology_code",
    "energy_source_code",
    "country",
    "grid_area_code",
)


def criteria_of(order: Order) -> matching.Criteria:
    return matching.Criteria(
        technology_code=order.accept_technology_code or None,
        energy_source_code=order.accept_energy_source_code or None,
        country=order.accept_country or None,
        grid_area_code=order.accept_grid_area_code or None,
        device_id=order.accept_device_id,
        period_from=order.accept_period_from,
        period_to=order.accept_period_to,
        max_age_days=order.max_age_days,
    )


def attributes_of(order: Order) -> matching.Attributes:
    return matching.Attributes(
        technology_code=order.technology_code,
        energy_source_code=order.energy_source_code,
        country=order.country,
        grid_area_code=order.grid_area_code,
        device_id=order.device_id,
        period_start=order.period_start,
        period_end=order.period_end,
    )


def engine_order(
    order: Order, *, order_id: int | None = None, min_fill: int | None = None
) -> matching.Order:
    buy = order.side == Order.Side.BUY
    return matching.Order(
        id=order.id if order_id is None else order_id,
        side=order.side,
        price=order.limit_price,
        quantity=order.quantity_wh - order.filled_wh,
        seq=order.seq,
        owner=order.organisation_id,
        tif=order.time_in_force,
        min_fill=order.min_fill_wh if min_fill is None else min_fill,
        attributes=None if buy else attributes_of(order),
        criteria=criteria_of(order) if buy else matching.ANY,
    )


def set_attributes(order: Order, bundle: Bundle) -> None:
    """An offer's attributes, from the certificates it sells."""
    issuance = bundle.issuance
    order.technology_code = issuance.technology_code
    order.energy_source_code = issuance.energy_source_code
    order.country = issuance.country
    order.grid_area_code = issuance.grid_area_code
    order.device_id = bundle.device_id
    order.period_start = bundle.period_start
    order.period_end = bundle.period_end


def _text(criteria: Mapping[str, Any], name: str, limit: int) -> str:
    value = criteria.get(name)
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise errors.InvalidOrder(fields={f"criteria.{name}": ["a code"]})
    return value


def set_criteria(order: Order, criteria: Mapping[str, Any]) -> None:
    """A bid's criteria; `production_hour` (an hour start) means "that hour only"."""
    known = {*_CRITERIA, "device", "period_from", "period_to", "production_hour", "max_age_days"}
    unknown = set(criteria) - known
    if unknown:
        raise errors.InvalidOrder(fields={f"criteria.{n}": ["unknown"] for n in sorted(unknown)})
    order.accept_technology_code = _text(criteria, "technology_code", 32)
    order.accept_energy_source_code = _text(criteria, "energy_source_code", 32)
    order.accept_country = _text(criteria, "country", 2)
    order.accept_grid_area_code = _text(criteria, "grid_area_code", 32)
    device = criteria.get("device")
    if device is not None and (isinstance(device, bool) or not isinstance(device, int)):
        raise errors.InvalidOrder(fields={"criteria.device": ["a device id"]})
    # accept_device is a foreign key, checked only at commit: an unknown id would fail there
    if device is not None and not Device.objects.filter(pk=device).exists():
        raise errors.InvalidOrder(fields={"criteria.device": ["no such device"]})
    order.accept_device_id = device
    start, end = criteria.get("period_from"), criteria.get("period_to")
    hour = criteria.get("production_hour")
    if hour is not None:
        if start is not None or end is not None or not _aware(hour) or hour.minute or hour.second:
            raise errors.InvalidOrder(fields={"criteria.production_hour": ["a whole UTC hour"]})
        start, end = hour, hour + dt.timedelta(hours=1)
    for name, value in (("period_from", start), ("period_to", end)):
        if value is not None and not _aware(value):
            raise errors.InvalidOrder(fields={f"criteria.{name}": ["a date-time with a zone"]})
    if start is not None and end is not None and end <= start:
        raise errors.InvalidOrder(fields={"criteria.period_to": ["after period_from"]})
    order.accept_period_from, order.accept_period_to = start, end
    age = criteria.get("max_age_days")
    if age is not None and (
        isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= MAX_AGE_DAYS
    ):
        raise errors.InvalidOrder(
            fields={"criteria.max_age_days": [f"whole days, from 0 to {MAX_AGE_DAYS}"]}
        )
    order.max_age_days = age


def _aware(value: Any) -> bool:
    return isinstance(value, dt.datetime) and value.tzinfo is not None


def _candidates(
    market: Market, incoming: matching.Order, now: dt.datetime
) -> tuple[str, list[Any]]:
    """The WHERE (after market, status and side) and ORDER BY of the orders `incoming`
    can reach, with their parameters."""
    if incoming.side == Order.Side.BUY:
        where, params = ["o.side = %s", "o.limit_price <= %s"], [Order.Side.SELL, incoming.price]
        c = incoming.criteria
        wanted = [(f"o.{name}", getattr(c, name)) for name in _CRITERIA]
        wanted += [("o.device_id", c.device_id)]
        for column, value in wanted:
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if c.period_from is not None:
            where.append("o.period_start >= %s")
            params.append(c.period_from)
        if c.period_to is not None:
            where.append("o.period_end <= %s")
            params.append(c.period_to)
        if c.max_age_days is not None:
            where.append("o.period_end >= %s")
            params.append(now - dt.timedelta(days=c.max_age_days))
        return " AND ".join(where) + " ORDER BY o.limit_price, o.seq, o.id", params
    a = incoming.attributes
    where, params = ["o.side = %s", "o.limit_price >= %s"], [Order.Side.BUY, incoming.price]
    for name in _CRITERIA:
        where.append(f"(o.accept_{name} = '' OR o.accept_{name} = %s)")
        params.append(getattr(a, name))
    where.append("(o.accept_device_id IS NULL OR o.accept_device_id = %s)")
    where.append("(o.accept_period_from IS NULL OR o.accept_period_from <= %s)")
    where.append("(o.accept_period_to IS NULL OR o.accept_period_to >= %s)")
    params += [a.device_id, a.period_start, a.period_end]
    return " AND ".join(where) + " ORDER BY o.limit_price DESC, o.seq, o.id", params


def makers_for(market: Market, incoming: matching.Order, *, now: dt.datetime) -> dict[int, Any]:
    """Resting orders `incoming` could trade with, in priority order, read until they
    cover its quantity (or the crossing part of the book ends).

    One hand-written statement per chunk, rows as light tuples with the Order's field
    names (`engine_order` reads them as it reads an Order); `as_order` makes a model
    instance of the few that trade."""
    where, params = _candidates(market, incoming, now)
    sql = (
        f"SELECT {rows.select_list(Order, 'o')} FROM market_order o "  # noqa: S608
        f"WHERE o.market_id = %s AND o.status = %s AND {where} LIMIT %s OFFSET %s"
    )
    params = [market.pk, Order.Status.OPEN, *(_db_value(v) for v in params)]
    convert = rows.converter(Order)
    found: dict[int, Any] = {}
    loaded: list[matching.Order] = []
    size = FIRST_CHUNK
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [*params, size, len(found)])
            chunk = cursor.fetchall()
            for row in chunk:
                resting = _Row(*convert(row))
                found[resting.id] = resting
                loaded.append(engine_order(resting))
            if len(chunk) < size or matching.enough_loaded(incoming, loaded, now=now):
                return found
            size = CHUNK


def as_order(row: Any) -> Order:
    """The model instance of a row `makers_for` returned."""
    return rows.load(Order, row)


def _db_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
