"""Certificates delivered after the settlement: the slot's pending Wh, once issued.

A slot settles with `certificates_pending_wh` > 0 when the sellers did not hold the
certificates of the energy yet (usually: not issued yet). `slot_certificates_deliver`
runs the settlement's certificate step again over what each line is still owed
(`delivered_wh - certificates_wh`, offers and bids laid end to end in order id order,
as at settlement), in one transaction with one `market.slot_certificates_delivered`
event per run that moved anything; it decrements the pending Wh by exactly what moved
and adds it to the lines' `certificates_wh`. A bid retiring on delivery has what it
received retired after that event, as at settlement. Idempotent: a run that finds no
certificate to move writes nothing (no event); two runs of one slot take the
settlement row FOR UPDATE first, so the second sees the first's result.

`slot_certificates_deliver_due` (the periodic `market-slots-settle` task and
`manage.py settle_slots` call it after settling) runs it for every settled slot with
pending Wh, oldest first, each in its own transaction.

Locking policy (market/locks.py): the `SlotSettlement` row FOR UPDATE first, then the
bundles the offers may deliver (pk order), then the certificates service delivers the
units; no settlement account is touched (the money was settled with the energy).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from ledger.services import ledger_append
from market import errors, events
from market.models import Order, SlotSettlement, SlotSettlementLine
from market.services.delivery import SYSTEM_ACTOR, require_market_operator, slot_end
from market.services.delivery_certificates import (
    candidate_bundles_lock,
    certificates_deliver,
    retire_on_delivery,
)
from market.units import UnitsLog

SETTLED = SlotSettlement.Status.SETTLED


@transaction.atomic
def slot_certificates_deliver(
    *,
    settlement_id: int,
    actor: User | str = SYSTEM_ACTOR,
    now: dt.datetime | None = None,
) -> int:
    """Deliver what the sellers now hold of a settled slot's pending certificates;
    returns the Wh that moved (0: nothing written)."""
    require_market_operator(actor)
    settlement = (
        SlotSettlement.objects.select_for_update(of=("self",))
        .select_related("market")
        .filter(pk=settlement_id)
        .first()
        if isinstance(settlement_id, int) and not isinstance(settlement_id, bool)
        else None
    )
    if settlement is None:
        raise errors.SlotSettlementNotFound(settlement_id=settlement_id)
    if settlement.status != SETTLED or settlement.certificates_pending_wh == 0:
        return 0
    now = now or timezone.now()
    market, end = settlement.market, slot_end(settlement.market, settlement.slot_start)
    lines = list(
        SlotSettlementLine.objects.filter(settlement=settlement)
        .select_related("order", "order__placed_by")
        .order_by("order_id")
    )
    orders = {line.order_id: line.order for line in lines}
    owed = [line for line in lines if line.delivered_wh > line.certificates_wh]
    offers = [orders[line.order_id] for line in owed if line.side == Order.Side.SELL]
    holdings = candidate_bundles_lock(market, offers, settlement.slot_start, end)
    if not any(holdings.values()):
        return 0
    before = {line.order_id: line.certificates_wh for line in lines}
    log, received = UnitsLog(), {}
    moved = certificates_deliver(
        log, holdings=holdings, orders=orders, lines=lines, now=now, received=received
    )
    if moved == 0:
        return 0
    settlement.certificates_pending_wh -= moved
    settlement.save(update_fields=["certificates_pending_wh"])
    changed = [line for line in lines if line.certificates_wh != before[line.order_id]]
    ledger_append(
        kind=events.SLOT_CERTIFICATES_DELIVERED,
        actor=actor,
        subject=[
            settlement,
            ("slot_clearing", settlement.clearing_id),
            market,
            *(orders[line.order_id] for line in changed),
            *log.subjects(),
        ],
        data={
            **events.certificates_delivered_data(settlement, changed, before, moved),
            "units": log.data(),
        },
    )
    retire_on_delivery(
        settlement=settlement, orders=orders, lines=changed, received=received, slot_end=end
    )
    SlotSettlementLine.objects.bulk_update(changed, ["certificates_wh", "retirement"])
    return moved


def slot_certificates_deliver_due(
    *, now: dt.datetime | None = None, **kwargs: Any
) -> list[tuple[SlotSettlement, int]]:
    """Run `slot_certificates_deliver` for every settled slot with pending certificates,
    oldest first, each in its own transaction; the settlements that moved some, with
    the Wh."""
    now = now or timezone.now()
    done = []
    pending = (
        SlotSettlement.objects.filter(status=SETTLED, certificates_pending_wh__gt=0)
        .order_by("slot_start", "pk")
        .values_list("pk", flat=True)
    )
    for settlement_id in list(pending):
        moved = slot_certificates_deliver(settlement_id=settlement_id, now=now, **kwargs)
        if moved:
            done.append((SlotSettlement.objects.get(pk=settlement_id), moved))
    return done
