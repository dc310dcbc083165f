"""Energy slots: clear a slot at gate closure at one price, and clear every slot that is due.

`slot_clear` runs `market.clearing.clear` (the rules live there, pure) on the slot's open
orders and records the result in one transaction with one ledger event,
`market.slot_cleared`, naming the market, the clearing, every order of the slot, the bid
accounts whose escrow it released and the journal entries.

Self-trade prevention happens inside `clear()`: an organisation's crossing bid and offer
volume is netted before the clearing (docs/market.md, "Self-trade prevention"). A netted
order's `cancel_reason` is `self_trade_netted`, the event says how many Wh each order lost,
and the netted Wh of a bid are not cleared, so their escrow is released with the rest.

Money: a bid escrowed `escrow_for(limit, quantity)` when placed. At clearing it keeps
`escrow_for(price, cleared Wh)` reserved — what its cleared energy costs at the clearing
price, held until delivery is settled against meter data — and the rest goes back to
available funds. Offers hold nothing. Fees are charged at delivery settlement, not here.

Locking policy (market/locks.py): the market's book row first, FOR UPDATE, so no order of
the market is placed, amended or cancelled while its slot clears, and two clearings of one
slot run one after the other (the second finds the `SlotClearing` row and returns it:
idempotent; a unique constraint is the backstop); then the bidders' settlement accounts,
all at once, in pk order.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from ledger.services import ledger_append
from market import clearing, errors, events, matching, storage
from market.locks import book_lock, settlement_accounts_lock
from market.models import Market, Order, SlotClearing
from market.services.orders import _escrow_to, _Run
from market.slots import is_slot_market, slot_check_aligned, slot_gate_closure

SYSTEM_ACTOR = "system:market-clearing"


def _status(order: Order, cleared: int) -> str:
    if cleared == order.quantity_wh:
        return Order.Status.CLEARED
    return Order.Status.PARTIALLY_CLEARED if cleared else Order.Status.UNFILLED


@transaction.atomic
def slot_clear(
    *,
    market_id: int,
    slot_start: dt.datetime,
    actor: User | str = SYSTEM_ACTOR,
    now: dt.datetime | None = None,
) -> SlotClearing:
    """Clear one slot whose gate has closed (once: a second call returns the first result)."""
    book = book_lock(market_id)
    market = book.market
    if not is_slot_market(market):
        raise errors.MarketMatchingUnsupported(market_id=market.pk, kind=market.kind)
    slot_start = slot_check_aligned(market, slot_start)
    done = SlotClearing.objects.filter(market=market, slot_start=slot_start).first()
    if done is not None:
        return done
    now = now or timezone.now()
    closes = slot_gate_closure(market, slot_start)
    if now < closes:
        raise errors.GateOpen(slot_start=slot_start.isoformat(), gate_closure=closes.isoformat())
    orders = list(
        Order.objects.filter(market=market, slot_start=slot_start, status=Order.Status.OPEN)
        .select_for_update()
        .order_by("pk")
    )
    result = clearing.clear(
        [
            clearing.SlotOrder(
                o.pk, o.side, o.limit_price, o.quantity_wh - o.filled_wh, o.seq, o.organisation_id
            )
            for o in orders
        ]
    )
    record = SlotClearing.objects.create(
        market=market,
        slot_start=slot_start,
        price=result.price,
        volume_wh=result.volume,
        orders_count=len(orders),
        cleared_at=now,
    )
    run = _Run(market=market, actor=actor, now=now)
    run.accounts = settlement_accounts_lock(
        o.settlement_account_id for o in orders if o.side == Order.Side.BUY
    )
    for order in orders:
        cleared = result.cleared(order.pk)
        order.filled_wh += cleared
        order.status = _status(order, order.filled_wh)
        order.clearing = record
        if result.netted_of(order.pk):
            order.cancel_reason = clearing.SELF_TRADE_NETTED
        order.closed_at = order.updated_at = now
        if order.side == Order.Side.BUY:
            keep = matching.escrow_for(result.price, cleared) if cleared else 0
            _escrow_to(run, order, keep)
    storage.orders_set_cleared(orders, clearing_id=record.pk, now=now)
    run.journal.write()
    ledger_append(
        kind=events.SLOT_CLEARED,
        actor=actor,
        subject=[
            record,
            market,
            *orders,
            *[run.accounts[pk] for pk in sorted(run.accounts)],
            *run.journal.entries,
        ],
        data=events.slot_clearing_data(record, orders, run.journal.entries, result.netted),
    )
    return record


def slot_clear_due(*, now: dt.datetime | None = None, **kwargs: Any) -> list[SlotClearing]:
    """Clear every slot of every energy market whose gate has closed and that has open
    orders, oldest first, each in its own transaction (the periodic task calls this)."""
    now = now or timezone.now()
    cleared = []
    for market in Market.objects.filter(matching=Market.Matching.UNIFORM).order_by("pk"):
        due = (
            Order.objects.filter(
                market=market,
                status=Order.Status.OPEN,
                slot_start__isnull=False,
                slot_start__lte=now + dt.timedelta(minutes=market.gate_closure_minutes),
            )
            .order_by("slot_start")
            .values_list("slot_start", flat=True)
            .distinct()
        )
        for slot_start in list(due):
            cleared.append(
                slot_clear(market_id=market.pk, slot_start=slot_start, now=now, **kwargs)
            )
    return cleared
