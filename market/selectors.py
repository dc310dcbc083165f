"""Reads of the market: markets and their books (public), and each organisation's orders,
trades, balances and journal (its members; the issuing body and auditors read all)."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum

from accounts.models import User
from accounts.permissions import user_organisation_ids, user_reads_everything
from market.models import (
    JournalLine,
    Market,
    Order,
    SettlementAccount,
    SlotClearing,
    SlotSettlement,
    SlotSettlementLine,
    Trade,
)


def _scope_ids(user: User | None) -> list[int] | None:
    """None: the user reads everything; else the organisations whose rows they see."""
    if user is not None and user.is_authenticated and user_reads_everything(user):
        return None
    return user_organisation_ids(user) if user is not None else []


def market_list() -> QuerySet[Market]:
    """Every market (public: code, currency, price band, fee)."""
    return Market.objects.all()


@dataclass(frozen=True)
class PriceLevel:
    price: int
    quantity_wh: int
    orders: int


@dataclass(frozen=True)
class BookView:
    market: Market
    bids: list[PriceLevel]
    offers: list[PriceLevel]


def market_book(*, market: Market, depth: int = 50) -> BookView:
    """The open orders aggregated by price level, best first (who placed them is not shown)."""

    def levels(side: str, ordering: str) -> list[PriceLevel]:
        rows = (
            Order.objects.filter(market=market, side=side, status=Order.Status.OPEN)
            .values("limit_price")
            .annotate(open_wh=Sum(F("quantity_wh") - F("filled_wh")), orders=Count("id"))
            .order_by(ordering)[:depth]
        )
        return [PriceLevel(r["limit_price"], r["open_wh"], r["orders"]) for r in rows]

    return BookView(
        market=market,
        bids=levels(Order.Side.BUY, "-limit_price"),
        offers=levels(Order.Side.SELL, "limit_price"),
    )


def order_list(*, user: User | None) -> QuerySet[Order]:
    """Orders of the user's organisations; the issuing body and auditors see all."""
    qs = Order.objects.all()
    orgs = _scope_ids(user)
    return qs if orgs is None else qs.filter(organisation_id__in=orgs)


def trade_list(*, user: User | None) -> QuerySet[Trade]:
    """Trades where one of the user's organisations bought or sold."""
    qs = Trade.objects.select_related("buy_order", "sell_order")
    orgs = _scope_ids(user)
    if orgs is None:
        return qs
    return qs.filter(
        Q(buy_order__organisation_id__in=orgs) | Q(sell_order__organisation_id__in=orgs)
    )


def settlement_account_list(*, user: User | None) -> QuerySet[SettlementAccount]:
    """Balances of the user's organisations (all members' for the issuing body, auditors)."""
    qs = SettlementAccount.objects.filter(kind=SettlementAccount.Kind.MEMBER)
    orgs = _scope_ids(user)
    return qs if orgs is None else qs.filter(organisation_id__in=orgs)


def journal_lines(*, account: SettlementAccount) -> QuerySet[JournalLine]:
    """The account's journal, newest first, each line with its entry."""
    return JournalLine.objects.filter(account=account).select_related("entry").order_by("-id")


def slot_clearing_list() -> QuerySet[SlotClearing]:
    """Every cleared slot with its orders (public: prices, volumes, order ids, no parties)."""
    return SlotClearing.objects.prefetch_related(
        Prefetch("orders", queryset=Order.objects.order_by("side", "pk"))
    )


def slot_settlement_get(*, clearing_id: int) -> SlotSettlement | None:
    """A cleared slot's delivery settlement with its lines (public, like the clearing)."""
    return (
        SlotSettlement.objects.filter(clearing_id=clearing_id)
        .prefetch_related(
            Prefetch("lines", queryset=SlotSettlementLine.objects.order_by("order_id"))
        )
        .first()
    )


def energy_cleared_prices(
    *, requests: Sequence[Mapping[str, Any]]
) -> list[list[int | None] | None]:
    """For each request (keys `grid_area_id`, `currency`, `start`, `step_seconds`, `n`): the
    cleared price (minor units per MWh) of each interval [start + i * step, ...) from the
    energy markets of that grid area in that currency, None for an interval no clearing with
    a price overlaps; None instead of the list when the area has no such market.

    Registered on consumers' `consumers.price_lookups` hook (apps.py). Two queries whatever
    the number of requests (the markets, then their clearings). Where slots and intervals
    differ in length, or several markets cleared, an interval's price is the mean of the
    overlapping clearings' prices weighted by cleared Wh x seconds of overlap, rounded half
    up to the minor unit.
    """
    if not requests:
        return []
    areas: dict[tuple[int, str], dict[int, int]] = {}
    for pk, area, currency, minutes in Market.objects.filter(
        kind=Market.Kind.ENERGY, grid_area_id__in={r["grid_area_id"] for r in requests}
    ).values_list("pk", "grid_area_id", "currency", "slot_minutes"):
        areas.setdefault((area, currency), {})[pk] = minutes
    wanted = [areas.get((r["grid_area_id"], r["currency"])) for r in requests]
    markets = {pk: minutes for found in wanted if found for pk, minutes in found.items()}
    by_market: dict[int, list[tuple[dt.datetime, int, int]]] = {}
    if markets:
        longest = dt.timedelta(minutes=max(markets.values()))
        first = min(r["start"] for r in requests)
        last = max(r["start"] + dt.timedelta(seconds=r["step_seconds"] * r["n"]) for r in requests)
        for market_id, slot_start, price, volume_wh in SlotClearing.objects.filter(
            market_id__in=list(markets),
            price__isnull=False,
            volume_wh__gt=0,
            slot_start__gt=first - longest,
            slot_start__lt=last,
        ).values_list("market_id", "slot_start", "price", "volume_wh"):
            by_market.setdefault(market_id, []).append((slot_start, price, volume_wh))
    return [
        None if found is None else _interval_prices(request, found, by_market)
        for request, found in zip(requests, wanted, strict=True)
    ]


def _interval_prices(
    request: Mapping[str, Any],
    markets: dict[int, int],
    clearings: dict[int, list[tuple[dt.datetime, int, int]]],
) -> list[int | None]:
    start, step, n = request["start"], request["step_seconds"], request["n"]
    numerator = [0] * n
    weight = [0] * n
    origin = int(start.timestamp())
    for market_id, minutes in markets.items():
        for slot_start, price, volume_wh in clearings.get(market_id, []):
            slot_from = int(slot_start.timestamp()) - origin
            slot_to = slot_from + minutes * 60
            for i in range(max(0, slot_from // step), min(n, -(-slot_to // step))):
                overlap = min(slot_to, (i + 1) * step) - max(slot_from, i * step)
                if overlap > 0:
                    numerator[i] += price * volume_wh * overlap
                    weight[i] += volume_wh * overlap
    return [
        (2 * num + w) // (2 * w) if w else None for num, w in zip(numerator, weight, strict=True)
    ]


def energy_index_clearings(
    *, market: str, periods: Sequence[tuple[dt.datetime, dt.datetime]]
) -> dict[str, Any] | None:
    """An indexed PPA's market prices (the `contracts.index_prices` hook, apps.py): for the
    energy market of code `market`, its id, currency and, for each period [start, end), the
    clearings with a price that overlap it as [clearing_id, price, volume_wh,
    overlap_seconds], in slot order; None when there is no energy market of that code.
    One query for the clearings whatever the number of periods; writes nothing."""
    found = (
        Market.objects.filter(code=market, kind=Market.Kind.ENERGY)
        .values("pk", "currency", "slot_minutes")
        .first()
    )
    if found is None:
        return None
    out: dict[str, Any] = {"market_id": found["pk"], "currency": found["currency"]}
    if not periods:
        return out | {"clearings": []}
    slot = dt.timedelta(minutes=found["slot_minutes"])
    rows = list(
        SlotClearing.objects.filter(
            market_id=found["pk"],
            price__isnull=False,
            volume_wh__gt=0,
            slot_start__gt=min(start for start, _end in periods) - slot,
            slot_start__lt=max(end for _start, end in periods),
        )
        .order_by("slot_start")
        .values_list("pk", "slot_start", "price", "volume_wh")
    )
    starts = [row[1] for row in rows]
    clearings = []
    for start, end in periods:
        inside = []
        first = bisect.bisect_right(starts, start - slot)
        for pk, slot_start, price, volume_wh in rows[first : bisect.bisect_left(starts, end)]:
            overlap = (min(end, slot_start + slot) - max(start, slot_start)).total_seconds()
            if overlap > 0:
                inside.append([pk, price, volume_wh, int(overlap)])
        clearings.append(inside)
    return out | {"clearings": clearings}
