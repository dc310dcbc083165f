"""Row locks of the market, each in primary-key order (Saleor's lock_objects).

Lock order inside one market transaction:
1. the market's `OrderBook` row (every change to the market's orders takes it, so the
   book is read and changed by one transaction at a time);
2. the incoming offer's bundle (the certificates service reserves it, pk order);
3. every settlement account the operation touches, all at once, in pk order (placer,
   counterparties, the fee account, the currency's external account): accounts are
   shared by all markets, so they are never locked in two steps;
4. the makers' reserved bundles (delivered by the certificates service; only this market
   touches them, under lock 1), then the receiving certificate accounts FOR KEY SHARE.
Deposits and withdrawals take only step 3. Clearing an energy slot takes step 1 (so no
order of the market changes while it clears, and a second clearing of the slot waits
and then finds the first), then its orders, then step 3 for the bidders' accounts.
Settling a slot's delivery takes the slot's `SlotClearing` row FOR UPDATE (a second
settlement waits and then finds the first), then its cleared orders, then the bundles the
offers may deliver (as step 2, pk order), then step 3 for the parties' and the operator's
accounts;
it does not take the book (the slot is closed).
"""

from __future__ import annotations

from collections.abc import Iterable

from market import errors
from market.models import OrderBook, SettlementAccount


def book_lock(market_id: int) -> OrderBook:
    """The market's book row, FOR UPDATE, with its market."""
    book = (
        OrderBook.objects.select_for_update(of=("self",))
        .select_related("market")
        .filter(market_id=market_id)
        .first()
    )
    if book is None:
        raise errors.MarketNotFound(market_id=market_id)
    return book


def settlement_accounts_lock(ids: Iterable[int]) -> dict[int, SettlementAccount]:
    """Settlement accounts FOR UPDATE in primary-key order; every id must exist."""
    wanted = sorted(set(ids))
    rows = SettlementAccount.objects.select_for_update().filter(pk__in=wanted).order_by("pk")
    found = {row.pk: row for row in rows}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise errors.SettlementAccountNotFound(settlement_account_ids=missing)
    return found
