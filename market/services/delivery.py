"""Energy slots: settle a cleared slot's delivery against the parties' meter readings.

`slot_settle` runs `market.delivery.settle` (the rules, pure) on the slot's cleared orders
and the readings of the parties' meters (`market.metering`), in one transaction with one
ledger event: `market.slot_settled`, naming the settlement, the clearing, the market,
every cleared order, every settlement account and every journal entry it touched. While a
party's readings are missing, and the market's grace period after the slot has not run
out, the settlement waits: a `waiting` row with the missing organisations and one
`market.slot_settlement_waiting` event (nothing is written again while the same parties
are missing). After the grace period it settles with missing readings counted as 0 Wh
(reason `fallback_missing_readings`).

Money (market/services/money.py journal, integers, each entry sums to zero): one
`delivery` entry consumes each cleared bid's escrow (what its delivered Wh cost at the
clearing price), releases the rest, pays the sellers and the grid fee to the operator;
then one `imbalance` entry per seller order charged for a shortfall (to the operator) or
paid for a surplus (by the operator), each capped at the payer's available funds (what it
could not pay is recorded as `uncollected_minor`). The certificates of the delivered
energy move from the sellers to the buyers in the same transaction
(`market/services/delivery_certificates.py`; the units go into the event's `units`), and
a bid placed with `retire_on_delivery` has them retired there too, after the settlement
event (a retirement with its statement and its own `certificate.retired` event, whose
mandate names the settlement and the order; the order's line names the retirement).

Locking policy (market/locks.py): the `SlotClearing` row FOR UPDATE first (two
settlements of one slot run one after the other; the second finds it settled and returns
it; the unique clearing of `SlotSettlement` is the backstop), then the cleared orders,
the bundles the offers may deliver (FOR UPDATE, pk order: before the accounts, as an
offer's placement takes its bundle), then every settlement account at once in pk order,
then the certificates service delivers the units. The book is not locked: the
slot's orders are closed since its clearing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from ledger.services import ledger_append
from market import delivery, errors, events, storage
from market.locks import settlement_accounts_lock
from market.metering import metered_wh
from market.models import (
    JournalEntry,
    Market,
    Order,
    SettlementAccount,
    SlotClearing,
    SlotSettlement,
    SlotSettlementLine,
)
from market.services.delivery_certificates import (
    candidate_bundles_lock,
    certificates_deliver,
    retire_on_delivery,
)
from market.services.money import AVAILABLE, RESERVED, Journal, settlement_account_ensure
from market.services.money import _require_market_operator as require_market_operator
from market.units import UnitsLog

SYSTEM_ACTOR = "system:market-settlement"
WAITING, SETTLED = SlotSettlement.Status.WAITING, SlotSettlement.Status.SETTLED


def slot_end(market: Market, slot_start: dt.datetime) -> dt.datetime:
    return slot_start + dt.timedelta(minutes=market.slot_minutes)


def _metered(
    market: Market, orders: list[Order], start: dt.datetime
) -> tuple[dict[tuple[str, int], int | None], list[int]]:
    """Each party's metered Wh (None: missing) and the organisations with missing readings."""
    end = slot_end(market, start)
    found: dict[tuple[str, int], int | None] = {}
    for side in (Order.Side.SELL, Order.Side.BUY):
        owners = {o.organisation_id for o in orders if o.side == side}
        if not owners:
            continue
        readings = metered_wh(
            organisation_ids=owners,
            production=side == Order.Side.SELL,
            grid_area_id=market.grid_area_id,
            start=start,
            end=end,
        )
        found.update({(str(side), owner): wh for owner, wh in readings.items()})
    missing = sorted({owner for (_side, owner), wh in found.items() if wh is None})
    return found, missing


@transaction.atomic
def slot_settle(
    *,
    clearing_id: int,
    actor: User | str = SYSTEM_ACTOR,
    now: dt.datetime | None = None,
) -> SlotSettlement:
    """Settle the delivery of one cleared slot once it has ended (a second call returns the
    settled result; while readings are missing within the grace period, it waits)."""
    require_market_operator(actor)
    found = (
        SlotClearing.objects.select_for_update(of=("self",))
        .select_related("market")
        .filter(pk=clearing_id)
        .first()
        if isinstance(clearing_id, int) and not isinstance(clearing_id, bool)
        else None
    )
    if found is None:
        raise errors.SlotClearingNotFound(clearing_id=clearing_id)
    clearing, market = found, found.market
    existing = SlotSettlement.objects.filter(clearing=clearing).first()
    if existing is not None and existing.status == SETTLED:
        return existing
    now = now or timezone.now()
    end = slot_end(market, clearing.slot_start)
    if now < end:
        raise errors.SlotNotDelivered(clearing_id=clearing.pk, slot_end=end.isoformat())
    orders = list(
        Order.objects.filter(clearing=clearing, filled_wh__gt=0).select_for_update().order_by("pk")
    )
    metered, missing = _metered(market, orders, clearing.slot_start)
    fallback = bool(missing) and now >= end + dt.timedelta(minutes=market.settlement_grace_minutes)
    if missing and not fallback:
        return _wait(existing, clearing, missing, actor=actor, now=now)
    result = delivery.settle(
        price=clearing.price or 0,
        orders=[
            delivery.DeliveryOrder(o.pk, str(o.side), o.organisation_id, o.filled_wh)
            for o in orders
        ],
        metered={key: wh or 0 for key, wh in metered.items()},
        fallback_buy_price=market.fallback_buy_price,
        fallback_sell_price=market.fallback_sell_price,
        grid_fee_per_mwh=market.grid_fee_per_mwh,
    )
    settlement = existing or SlotSettlement(
        clearing=clearing, market=market, slot_start=clearing.slot_start, created_at=now
    )
    settlement.status = SETTLED
    settlement.reason = SlotSettlement.Reason.FALLBACK if missing else SlotSettlement.Reason.NONE
    settlement.missing_organisations = missing
    settlement.cleared_wh = clearing.volume_wh
    settlement.settled_at = now
    offers = [o for o in orders if o.side == Order.Side.SELL]
    holdings = candidate_bundles_lock(market, offers, clearing.slot_start, end)
    journal, accounts, lines = _move_money(market, settlement, orders, result, actor, now)
    log, received = UnitsLog(), {}
    by_pk = {o.pk: o for o in orders}
    moved = certificates_deliver(
        log, holdings=holdings, orders=by_pk, lines=lines, now=now, received=received
    )
    settlement.certificates_pending_wh = result.delivered - moved
    settlement.save()
    storage.orders_set_settled(orders, now=now)
    journal.write()
    ledger_append(
        kind=events.SLOT_SETTLED,
        actor=actor,
        subject=[
            settlement,
            clearing,
            market,
            *orders,
            *[accounts[pk] for pk in sorted(accounts)],
            *journal.entries,
            *log.subjects(),
        ],
        data={
            **events.settlement_data(settlement, lines, orders, journal.entries),
            "units": log.data(),
        },
    )
    # After the event that delivered the units: each retirement's own event follows it.
    retire_on_delivery(
        settlement=settlement, orders=by_pk, lines=lines, received=received, slot_end=end
    )
    for line in lines:
        line.settlement = settlement
    SlotSettlementLine.objects.bulk_create(lines)
    return settlement


def _wait(
    existing: SlotSettlement | None,
    clearing: SlotClearing,
    missing: list[int],
    *,
    actor: User | str,
    now: dt.datetime,
) -> SlotSettlement:
    """Record that the slot waits for the readings of `missing` (once per set of parties)."""
    if existing is not None and existing.missing_organisations == missing:
        return existing
    settlement = existing or SlotSettlement(
        clearing=clearing,
        market=clearing.market,
        slot_start=clearing.slot_start,
        cleared_wh=clearing.volume_wh,
        created_at=now,
    )
    settlement.status = WAITING
    settlement.reason = SlotSettlement.Reason.MISSING_READINGS
    settlement.missing_organisations = missing
    settlement.save()
    ledger_append(
        kind=events.SLOT_SETTLEMENT_WAITING,
        actor=actor,
        subject=[settlement, clearing, clearing.market],
        data=events.settlement_data(settlement, [], [], []),
    )
    return settlement


def _move_money(
    market: Market,
    settlement: SlotSettlement,
    orders: list[Order],
    result: delivery.Delivery,
    actor: User | str,
    now: dt.datetime,
) -> tuple[Journal, dict[int, SettlementAccount], list[SlotSettlementLine]]:
    """Post the delivery and imbalance entries on the locked accounts; the lines."""
    operator_id = settlement_account_ensure(
        organisation_id=market.operator_id, currency=market.currency
    )
    accounts = settlement_accounts_lock([operator_id, *(o.settlement_account_id for o in orders)])
    operator = accounts[operator_id]
    by_id = {o.pk: o for o in orders}
    journal = Journal(currency=market.currency, actor=actor, now=now)
    pay: list[Any] = [(operator, AVAILABLE, result.grid_fee)]
    lines = []
    for outcome in result.orders:
        order = by_id[outcome.order_id]
        account = accounts[order.settlement_account_id]
        line = SlotSettlementLine(
            order=order,
            organisation_id=order.organisation_id,
            side=order.side,
            cleared_wh=outcome.cleared,
            metered_wh=outcome.metered,
            delivered_wh=outcome.delivered,
            surplus_wh=outcome.surplus,
            shortfall_wh=outcome.shortfall,
            amount_minor=outcome.amount,
        )
        if order.side == Order.Side.BUY:
            line.released_minor = order.reserved_minor - outcome.amount
            pay += [
                (account, RESERVED, -order.reserved_minor),
                (account, AVAILABLE, line.released_minor),
            ]
            order.reserved_minor = 0
        else:
            pay.append((account, AVAILABLE, outcome.amount))
        order.updated_at = now
        lines.append(line)
    journal.post(
        JournalEntry.Kind.DELIVERY,
        _merged(pay),
        reference=f"slot_clearing:{settlement.clearing_id}",
    )
    for outcome, line in zip(result.orders, lines, strict=True):
        account = accounts[by_id[outcome.order_id].settlement_account_id]
        charge = min(outcome.charge, account.available)
        paid = min(outcome.surplus_pay, operator.available + charge)
        line.charge_minor, line.surplus_paid_minor = charge, paid
        line.uncollected_minor = outcome.charge - charge + outcome.surplus_pay - paid
        journal.post(
            JournalEntry.Kind.IMBALANCE,
            _merged([(account, AVAILABLE, paid - charge), (operator, AVAILABLE, charge - paid)]),
            order_id=outcome.order_id,
        )
    settlement.delivered_wh = result.delivered
    settlement.buyers_paid_minor = result.pot
    settlement.grid_fee_minor = result.grid_fee
    settlement.sellers_received_minor = result.pot - result.grid_fee
    settlement.released_minor = sum(line.released_minor for line in lines)
    settlement.shortfall_charged_minor = sum(line.charge_minor for line in lines)
    settlement.surplus_paid_minor = sum(line.surplus_paid_minor for line in lines)
    settlement.uncollected_minor = sum(line.uncollected_minor for line in lines)
    return journal, accounts, lines


def _merged(lines: list[Any]) -> list[Any]:
    """Lines on the same account and bucket added up (one line each, zero lines dropped)."""
    total: dict[tuple[int, str], list[Any]] = {}
    for account, bucket, amount in lines:
        key = (account.pk, bucket)
        if key in total:
            total[key][2] += amount
        else:
            total[key] = [account, bucket, amount]
    return [tuple(line) for line in total.values() if line[2]]


def slot_settle_due(*, now: dt.datetime | None = None, **kwargs: Any) -> list[SlotSettlement]:
    """Settle every cleared slot that has ended and is not settled yet, oldest first, each
    in its own transaction (the periodic task calls this)."""
    now = now or timezone.now()
    done = []
    for market in Market.objects.filter(matching=Market.Matching.UNIFORM).order_by("pk"):
        due = (
            SlotClearing.objects.filter(
                market=market,
                volume_wh__gt=0,
                slot_start__lte=now - dt.timedelta(minutes=market.slot_minutes),
            )
            .exclude(settlement__status=SETTLED)
            .order_by("slot_start")
            .values_list("pk", flat=True)
        )
        for clearing_id in list(due):
            settlement = slot_settle(clearing_id=clearing_id, now=now, **kwargs)
            if settlement.status == SETTLED:
                done.append(settlement)
    return done
