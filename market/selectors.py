"""Reads of the market: markets and their books (public), and each organisation's orders,
trades, balances and journal (its members; the issuing body and auditors read all)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum

from accounts.models import User
from accounts.permissions import user_organisation_ids, user_reads_everything
from market.models import JournalLine, Market, Order, SettlementAccount, SlotClearing, Trade


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


def energy_cleared_prices(
    *, grid_area_id: int, currency: str, start: dt.datetime, step_seconds: int, n: int
) -> list[int | None] | None:
    """The cleared price (minor units per MWh) of each interval [start + i * step, ...) from
    the energy markets of the grid area in that currency; None for an interval no clearing
    with a price overlaps; None altogether when the area has no such market.

    Registered on consumers' `consumers.price_lookups` hook (apps.py). Where slots and
    intervals differ in length, or several markets cleared, an interval's price is the
    mean of the overlapping clearings' prices weighted by cleared Wh x seconds of overlap,
    rounded half up to the minor unit.
    """
    markets = dict(
        Market.objects.filter(
            kind=Market.Kind.ENERGY, grid_area_id=grid_area_id, currency=currency
        ).values_list("pk", "slot_minutes")
    )
    if not markets:
        return None
    longest = dt.timedelta(minutes=max(markets.values()))
    end = start + dt.timedelta(seconds=step_seconds * n)
    clearings = SlotClearing.objects.filter(
        market_id__in=list(markets),
        price__isnull=False,
        volume_wh__gt=0,
        slot_start__gt=start - longest,
        slot_start__lt=end,
    ).values_list("market_id", "slot_start", "price", "volume_wh")
    numerator = [0] * n
    weight = [0] * n
    origin = int(start.timestamp())
    for market_id, slot_start, price, volume_wh in clearings:
        slot_from = int(slot_start.timestamp()) - origin
        slot_to = slot_from + markets[market_id] * 60
        first = max(0, slot_from // step_seconds)
        last = min(n, -(-slot_to // step_seconds))
        for i in range(first, last):
            overlap = min(slot_to, (i + 1) * step_seconds) - max(slot_from, i * step_seconds)
            if overlap > 0:
                numerator[i] += price * volume_wh * overlap
                weight[i] += volume_wh * overlap
    return [
        (2 * num + w) // (2 * w) if w else None for num, w in zip(numerator, weight, strict=True)
    ]
