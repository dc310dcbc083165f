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

from django.db import connection

from market import errors
from market.models import Market, OrderBook, SettlementAccount
from registry import model_rows as rows
from registry.deferred_writes import execute_or_defer

# Hand-written statements (registry/model_rows.py says why); the row-lock clauses are
# PostgreSQL's, SQLite serialises writers instead.


def _for_update(of: str = "") -> str:
    if connection.vendor != "postgresql":
        return ""
    return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"


def book_lock(market_id: int) -> OrderBook:
    """The market's book row, FOR UPDATE, with its market."""
    sql = (
        f"SELECT {rows.select_list(Market, 'm')}, b.next_seq "  # noqa: S608
        "FROM market_orderbook b JOIN market_market m ON m.id = b.market_id "
        f"WHERE b.market_id = %s{_for_update('b')}"
    )
    convert = rows.converter(Market)
    with connection.cursor() as cursor:
        cursor.execute(sql, [market_id])
        row = cursor.fetchone()
    if row is None:
        raise errors.MarketNotFound(market_id=market_id)
    market = rows.load(Market, convert(row))
    book = rows.load(OrderBook, [market.pk, row[-1]])
    book.market = market
    return book


def book_seq_take(book: OrderBook) -> int:
    """The next sequence number of the (locked) book, which moves on by one."""
    seq = book.next_seq
    book.next_seq = seq + 1
    execute_or_defer(
        "UPDATE market_orderbook SET next_seq = %s WHERE market_id = %s",
        [book.next_seq, book.market_id],
    )
    return seq


def _accounts_lock(where: str, params: list) -> dict[int, SettlementAccount]:
    sql = (
        f"SELECT {rows.select_list(SettlementAccount, 's')} "  # noqa: S608
        f"FROM market_settlementaccount s WHERE {where} ORDER BY s.id{_for_update()}"
    )
    return {row.pk: row for row in rows.fetch(SettlementAccount, sql, params)}


def settlement_accounts_lock(ids: Iterable[int]) -> dict[int, SettlementAccount]:
    """Settlement accounts FOR UPDATE in primary-key order; every id must exist."""
    wanted = sorted(set(ids))
    found = _accounts_lock(f"s.id IN ({rows.marks(wanted)})", wanted) if wanted else {}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise errors.SettlementAccountNotFound(settlement_account_ids=missing)
    return found


def member_accounts_lock(
    ids: Iterable[int], organisation_ids: Iterable[int], currency: str
) -> tuple[dict[int, SettlementAccount], dict[int, int]]:
    """Settlement accounts by id and the member accounts of organisations in `currency`,
    all FOR UPDATE in one statement (so in primary-key order); also which account is each
    organisation's. An organisation without an account in the currency is left out of the
    mapping (the caller creates it and locks again)."""
    ids, orgs = sorted(set(ids)), sorted(set(organisation_ids))
    where = [f"s.id IN ({rows.marks(ids)})"] if ids else []
    params: list = [*ids]
    if orgs:
        where.append(
            f"(s.organisation_id IN ({rows.marks(orgs)}) AND s.currency = %s AND s.kind = %s)"
        )
        params += [*orgs, currency, SettlementAccount.Kind.MEMBER.value]
    found = _accounts_lock(" OR ".join(where), params) if where else {}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise errors.SettlementAccountNotFound(settlement_account_ids=missing)
    own = {
        row.organisation_id: row.pk
        for row in found.values()
        if row.organisation_id in orgs
        and row.currency == currency
        and row.kind == SettlementAccount.Kind.MEMBER
    }
    return found, own
