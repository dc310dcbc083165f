"""Rebuild the market's balances, escrow and orders from its ledger events alone.

Slot clearings and delivery settlements (`market.slot_settled`) move escrow and money
like any other journal entry; the set of settled slots must equal the table's.

Registered as a `certificates.replay.REPLAY_EXTENSIONS` entry, so `manage.py
replay_ledger` runs it (the units the market reserved and delivered are replayed by the
certificates replay, from the same events' `units`). Every journal entry in the events
must sum to zero and leave no member balance below zero; the replayed balances, the
orders' state and the set of trades must equal the tables. A difference is evidence: a
row changed outside the services, or an event is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.replaying import ReplayProblems, events_of_kinds, replay_snapshot
from market import events
from market.models import Order, SettlementAccount, SlotSettlement, Trade

ORDER_FIELDS = (
    "status",
    "quantity_wh",
    "filled_wh",
    "limit_price",
    "seq",
    "bundle_id",
    "reserved_minor",
    "settlement_account_id",
)


@dataclass
class MarketReplayReport(ReplayProblems):
    events: int = 0
    orders: int = 0
    open_orders: int = 0
    trades: int = 0
    balances: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return (
            f"{self.events} market events: {len(self.balances)} settlement accounts, "
            f"{self.orders} orders ({self.open_orders} open), {self.trades} trades replayed"
        )


class _State:
    def __init__(self, report: MarketReplayReport) -> None:
        self.report = report
        self.balances: dict[int, list[int]] = {}
        self.external: set[int] = set()
        self.orders: dict[int, dict[str, Any]] = {}
        self.trades: set[int] = set()
        self.settled: set[int] = set()
        self.where = ""

    def fail(self, text: str) -> None:
        self.report.problem(f"{self.where}: {text}")

    def journal(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            lines = entry["lines"]
            if sum(amount for _account, _bucket, amount in lines) != 0:
                self.fail(f"journal entry {entry['journal_entry_id']} does not sum to zero")
            for account_id, bucket, amount in lines:
                balance = self.balances.setdefault(account_id, [0, 0])
                balance[0 if bucket == "available" else 1] += amount
                if account_id not in self.external and min(balance) < 0:
                    self.fail(f"settlement account {account_id} goes below zero")

    def order(self, data: dict[str, Any], *, new: bool) -> None:
        pk = data["order_id"]
        if new and pk in self.orders:
            self.fail(f"order {pk} placed twice")
        if not new and pk not in self.orders:
            self.fail(f"order {pk} changed before it was placed")
        state = self.orders.setdefault(pk, {})
        state.update({name: data[name] for name in ORDER_FIELDS if name in data})
        if state.get("filled_wh", 0) > state.get("quantity_wh", 0):
            self.fail(f"order {pk} filled beyond its quantity")

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind in (events.DEPOSITED, events.WITHDRAWN):
            self.external.add(data["external_account_id"])
            self.journal(data["journal"])
            return
        if kind == events.PAID:
            self.journal(data["journal"])
            return
        if kind in (events.SLOT_CLEARED, events.SLOT_SETTLED):
            # A settlement consumes and releases the cleared bids' escrow (to 0).
            self.journal(data["journal"])
            for order in data["orders"]:
                self.order(order, new=False)
            if kind == events.SLOT_SETTLED:
                self.settled.add(data["settlement"]["clearing_id"])
            return
        if kind not in (events.ORDER_PLACED, events.ORDER_AMENDED, events.ORDER_CANCELLED):
            return
        self.journal(data["journal"])
        self.order(data["order"], new=kind == events.ORDER_PLACED)
        for maker in data["makers"]:
            self.order(maker, new=False)
        for trade in data["trades"]:
            if trade["trade_id"] in self.trades:
                self.fail(f"trade {trade['trade_id']} recorded twice")
            self.trades.add(trade["trade_id"])


def replay_market() -> MarketReplayReport:
    """Replay the market events and compare balances, orders and trades with the tables."""
    report = MarketReplayReport()
    state = _State(report)
    with replay_snapshot():
        for where, kind, data in events_of_kinds(events.KINDS):
            state.where = f"{where} ({kind})"
            report.events += 1
            try:
                state.apply(kind, data)
            except (KeyError, TypeError, ValueError) as exc:
                state.fail(f"malformed event data: {exc!r}")
        _compare(state, report)
    return report


def _compare(state: _State, report: MarketReplayReport) -> None:
    state.where = "tables"
    table = {
        pk: (available, reserved)
        for pk, available, reserved in SettlementAccount.objects.values_list(
            "pk", "available", "reserved"
        )
    }
    replayed = {pk: tuple(balance) for pk, balance in state.balances.items()}
    for pk in sorted(set(table) | set(replayed)):
        if table.get(pk, (0, 0)) != replayed.get(pk, (0, 0)):
            report.problem(
                f"settlement account {pk}: ledger {replayed.get(pk)}, table {table.get(pk)}"
            )
    rows = Order.objects.order_by("pk").values_list("pk", *ORDER_FIELDS)
    seen = set()
    for pk, *values in rows.iterator(chunk_size=5000):
        seen.add(pk)
        ledger = state.orders.get(pk)
        row = dict(zip(ORDER_FIELDS, values, strict=True))
        if ledger is None:
            report.problem(f"order {pk} is in the table but no event placed it")
        elif any(ledger.get(name) != row[name] for name in ORDER_FIELDS):
            report.problem(f"order {pk}: ledger {ledger}, table {row}")
    for pk in sorted(set(state.orders) - seen):
        report.problem(f"order {pk} is in the ledger but not in the table")
    escrow: dict[int, int] = {}
    for order in state.orders.values():
        # Open bids hold escrow, and so do cleared energy bids (for delivery settlement).
        if order.get("reserved_minor"):
            account = order["settlement_account_id"]
            escrow[account] = escrow.get(account, 0) + order["reserved_minor"]
    for pk, (_available, reserved) in sorted(replayed.items()):
        if reserved != escrow.get(pk, 0):
            report.problem(
                f"settlement account {pk} reserves {reserved}, its open bids {escrow.get(pk, 0)}"
            )
    trades = set(Trade.objects.values_list("pk", flat=True))
    if trades != state.trades:
        report.problem(
            f"trades differ: only in ledger {sorted(state.trades - trades)[:20]}, "
            f"only in table {sorted(trades - state.trades)[:20]}"
        )
    settled = set(
        SlotSettlement.objects.filter(status=SlotSettlement.Status.SETTLED).values_list(
            "clearing_id", flat=True
        )
    )
    if settled != state.settled:
        report.problem(
            f"settled slots differ: only in ledger {sorted(state.settled - settled)[:20]}, "
            f"only in table {sorted(settled - state.settled)[:20]}"
        )
    report.balances = dict(sorted(replayed.items()))
    report.orders = len(state.orders)
    report.open_orders = sum(1 for o in state.orders.values() if o.get("status") == "open")
    report.trades = len(state.trades)
