"""The market's hand-written SQL: where the ORM costs more than the work (measured).

`orders_set_cleared` writes a slot's clearing onto its orders. Django's `bulk_update`
builds one CASE expression per field and row in Python: clearing a 1,000-order slot on
PostgreSQL took 1.09 s with it (most of it there, by profile) and 0.34 s with one
parametrised UPDATE per order through `executemany`, which SQLite runs too.
`orders_set_settled` and `accounts_set_balances` do the same for a slot's delivery
settlement (the bids' escrow) and for the balances a journal changed.

Placing an order (benchmarks/market_bench.py) reads and writes its rows here and in
market/locks.py, through registry/model_rows.py: `orders_set_matched`, `account_with_role`, the
journal's inserts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection

from accounts.models import Account, Organisation
from market.models import Order, SettlementAccount
from registry.model_rows import attnames, converter, load, select_list
from registry.row_updates import update_from_values


def orders_set_cleared(orders: Iterable[Order], *, clearing_id: int, now: dt.datetime) -> None:
    """Store each order's status, cleared Wh, escrow and cancel reason (self-trade
    prevention) after its slot's clearing."""
    table = Order._meta.db_table
    rows = [
        (
            order.status,
            order.filled_wh,
            order.reserved_minor,
            order.cancel_reason,
            clearing_id,
            now,
            now,
            order.pk,
        )
        for order in orders
    ]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET status = %s, filled_wh = %s, reserved_minor = %s, "  # noqa: S608
            "cancel_reason = %s, clearing_id = %s, closed_at = %s, updated_at = %s WHERE id = %s",
            rows,
        )


def orders_set_settled(orders: Iterable[Order], *, now: dt.datetime) -> None:
    """Store each order's escrow after its slot's delivery settlement."""
    rows = [(order.reserved_minor, now, order.pk) for order in orders]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Order._meta.db_table} SET reserved_minor = %s, "  # noqa: S608
            "updated_at = %s WHERE id = %s",
            rows,
        )


def accounts_set_balances(accounts: Iterable[SettlementAccount]) -> None:
    """Store the balances of settlement accounts (locked by the caller)."""
    rows = [(account.available, account.reserved, account.pk) for account in accounts]
    if not rows:
        return
    columns = ["available::bigint", "reserved::bigint", "id::bigint"]
    update_from_values(SettlementAccount._meta.db_table, columns, rows)


def _db_time(value: dt.datetime | None) -> object:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


_MATCHED = [
    "status::varchar",
    "limit_price::bigint",
    "quantity_wh::bigint",
    "filled_wh::bigint",
    "seq::bigint",
    "bundle_id::bigint",
    "reserved_minor::bigint",
    "cancel_reason::varchar",
    "closed_at::timestamptz",
    "updated_at::timestamptz",
    "id::bigint",
]


def orders_set_matched(orders: Iterable[Order]) -> None:
    """Store what placing, amending or matching changes on orders (the taker and its
    makers): one UPDATE per order instead of a save and a `bulk_update`."""
    rows = [
        (
            order.status,
            order.limit_price,
            order.quantity_wh,
            order.filled_wh,
            order.seq,
            order.bundle_id,
            order.reserved_minor,
            order.cancel_reason,
            _db_time(order.closed_at),
            _db_time(order.updated_at),
            order.pk,
        )
        for order in orders
    ]
    update_from_values(Order._meta.db_table, _MATCHED, rows)


def account_with_role(account_id: int, user_id: int | None) -> tuple[Account, str | None] | None:
    """An account with its organisation, and the user's membership role in that
    organisation (None: no membership), in one statement."""
    sql = (
        f"SELECT {select_list(Account, 'a')}, "  # noqa: S608
        f"{select_list(Organisation, 'o')}, m.role "
        "FROM accounts_account a JOIN accounts_organisation o ON o.id = a.organisation_id "
        "LEFT JOIN accounts_membership m ON m.organisation_id = a.organisation_id "
        "AND m.user_id = %s WHERE a.id = %s ORDER BY m.id LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, account_id])
        row = cursor.fetchone()
    if row is None:
        return None
    account = load(Account, converter(Account)(row))
    width = len(attnames(Account))
    account.organisation = load(Organisation, converter(Organisation, width)(row))
    return account, row[-1]
