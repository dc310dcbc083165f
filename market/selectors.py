"""Reads of the market: markets and their books (public), and each organisation's orders,
trades, balances and journal (its members; the issuing body and auditors read all)."""

from __future__ import annotations

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
