"""Certificates for the energy delivered in a settled slot: from the sellers to the buyers.

Called by `slot_settle` inside its transaction (no event of its own: the units changes go
into `market.slot_settled`'s `units` and subjects, as order events carry theirs).

Pairing: the offers' delivered Wh and the bids' delivered Wh, each in order id order,
are laid end to end and paired Wh by Wh (the first offer's Wh go to the first bid until
one is used up, and so on), so every delivered Wh has one seller and one buyer.

For each pair, the seller's active bundles in its order's trading account, of devices of
its organisation (in the market's grid area, when it has one) and whose production
period covers the slot, oldest first, give their first units: reserved through the
certificates app's reservation service (acting as the user who placed the offer, who
must still act for the holder) and delivered to the bid's trading account. When the
seller holds too few such certificates (not issued yet, sold elsewhere, expired) or the
move is refused (a closed account, a transfer policy), the rest of the pair stays without
certificates: the line's `certificates_wh` says how many moved and the settlement's
`certificates_pending_wh` how many did not. A later run delivers those once the
sellers hold them (`market/services/delivery_pending.py`): the same pairing over what
each line is still owed (`delivered_wh - certificates_wh`).

A bid placed with `retire_on_delivery` has the certificates it received retired in the
same transaction (`retire_on_delivery`, called after the `market.slot_settled` event
that delivered them, so that the ledger replays the delivery before the retirement):
one retirement per bid through the certificates app's `certificate_retire` under a
mandate for the bid's account (the organisation agreed when it placed the bid; the
mandate reference, in the event, names the settlement and the order), with its own
`certificate.retired` event and statement, for the bid's beneficiary, the slot being
the consumption period. The line names it (`retirement`). When the retirement is
refused (more than MAX_BATCH_ITEMS bundles, the account closed), the certificates stay
delivered, active, and the line names no retirement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F

from certificates.models import Bundle, Retirement
from certificates.services import (
    Mandate,
    certificate_retire,
    certificate_units_deliver,
    certificate_units_reserve,
)
from market.models import Market, Order, SlotSettlement, SlotSettlementLine
from market.units import DELIVER, RESERVE, UnitsLog
from registry.errors import DomainError

SETTLEMENT_ACTOR = "system:market-settlement"


def pairs(
    offers: Sequence[tuple[int, int]], bids: Sequence[tuple[int, int]]
) -> list[tuple[int, int, int]]:
    """(offer id, bid id, Wh) pairing the delivered Wh end to end, in the given order."""
    result, i, j = [], 0, 0
    offers_left = [wh for _pk, wh in offers]
    bids_left = [wh for _pk, wh in bids]
    while i < len(offers) and j < len(bids):
        wh = min(offers_left[i], bids_left[j])
        if wh:
            result.append((offers[i][0], bids[j][0], wh))
        offers_left[i] -= wh
        bids_left[j] -= wh
        if offers_left[i] == 0:
            i += 1
        if bids_left[j] == 0:
            j += 1
    return result


Holdings = dict[tuple[int, int], list[Bundle]]


def candidate_bundles_lock(
    market: Market, offers: Sequence[Order], slot_start: dt.datetime, slot_end: dt.datetime
) -> Holdings:
    """The bundles each offer may deliver, by (trading account, organisation), oldest first,
    locked FOR UPDATE in pk order in one query, before the settlement accounts: the order
    an offer's placement takes them in (market/locks.py, steps 2 and 3), so a settlement
    and a placement of the same bundle cannot deadlock."""
    keys = {(o.certificate_account_id, o.organisation_id) for o in offers}
    if not keys:
        return {}
    rows = Bundle.objects.filter(
        account_id__in={account for account, _org in keys},
        status=Bundle.Status.ACTIVE,
        device__organisation_id__in={org for _account, org in keys},
        period_start__lte=slot_start,
        period_end__gte=slot_end,
    )
    if market.grid_area_id is not None:
        rows = rows.filter(device__grid_area_id=market.grid_area_id)
    locked = rows.select_for_update(of=("self",)).annotate(owner=F("device__organisation_id"))
    holdings: Holdings = {key: [] for key in keys}
    for bundle in sorted(locked.order_by("pk"), key=lambda b: (b.period_start, b.unit_start, b.pk)):
        key = (bundle.account_id, bundle.owner)
        if key in holdings:
            holdings[key].append(bundle)
    return holdings


def certificates_deliver(
    log: UnitsLog,
    *,
    holdings: Holdings,
    orders: dict[int, Order],
    lines: list[SlotSettlementLine],
    now: dt.datetime,
    received: dict[int, list[int]] | None = None,
) -> int:
    """Move the certificates of the delivered energy; returns the Wh that moved. The
    bundles each bid received are added to `received` (bid id: bundle ids)."""
    by_order = {line.order_id: line for line in lines}
    ranked = sorted(lines, key=lambda line: line.order_id)
    # What each line is still owed: all of its delivered Wh at settlement, the rest later.
    offers = [
        (ln.order_id, ln.delivered_wh - ln.certificates_wh) for ln in ranked if ln.side == "sell"
    ]
    bids = [
        (ln.order_id, ln.delivered_wh - ln.certificates_wh) for ln in ranked if ln.side == "buy"
    ]
    moved_total = 0
    for offer_id, bid_id, wh in pairs(offers, bids):
        offer = orders[offer_id]
        held = holdings.get((offer.certificate_account_id, offer.organisation_id), [])
        moved = _move(log, held, offer, orders[bid_id], wh, now, received)
        by_order[offer_id].certificates_wh += moved
        by_order[bid_id].certificates_wh += moved
        moved_total += moved
    return moved_total


def _move(
    log: UnitsLog,
    held: list[Bundle],
    offer: Order,
    bid: Order,
    wh: int,
    now: dt.datetime,
    received: dict[int, list[int]] | None,
) -> int:
    """Deliver up to `wh` from the first of `held` (updated: a split leaves its rest first)."""
    moved = 0
    while held and moved < wh:
        bundle = held[0]
        volume = bundle.unit_end - bundle.unit_start
        take = min(wh - moved, volume)
        try:
            with transaction.atomic():
                reserved = certificate_units_reserve(
                    actor=offer.placed_by,
                    bundle_id=bundle.pk,
                    volume_wh=None if take == volume else take,
                    now=now,
                )
                delivered = certificate_units_deliver(
                    bundle_id=reserved.bundle.pk, to_account_id=bid.certificate_account_id, now=now
                )
        except DomainError:
            break
        log.add(RESERVE, reserved)
        log.add(DELIVER, delivered)
        if received is not None:
            received.setdefault(bid.pk, []).append(delivered.bundle.pk)
        moved += take
        if reserved.rest is not None:
            held[0] = reserved.rest
        else:
            held.pop(0)
    return moved


def retire_on_delivery(
    *,
    settlement: SlotSettlement,
    orders: dict[int, Order],
    lines: list[SlotSettlementLine],
    received: dict[int, list[int]],
    slot_end: dt.datetime,
) -> list[Retirement]:
    """Retire what each bid asking for it received (one retirement per bid, bid id
    order); set its line's `retirement` (the first one, when a later delivery retires
    more). Returns the retirements made."""
    by_order = {line.order_id: line for line in lines}
    made = []
    for bid_id, bundle_ids in sorted(received.items()):
        bid = orders[bid_id]
        if not bid.retire_on_delivery or not bundle_ids:
            continue
        mandate = Mandate(
            holder_account_id=bid.certificate_account_id,
            reference={"slot_settlement_id": settlement.pk, "order_id": bid.pk},
        )
        try:
            with transaction.atomic():
                retirement = certificate_retire(
                    actor=bid.placed_by or SETTLEMENT_ACTOR,
                    items=[(pk, None) for pk in bundle_ids],
                    beneficiary_name=bid.retire_beneficiary_name,
                    beneficiary_country=bid.retire_beneficiary_country,
                    consumption_start=settlement.slot_start,
                    consumption_end=slot_end,
                    purpose=bid.retire_purpose,
                    mandate=mandate,
                )
        except DomainError:
            continue
        if by_order[bid_id].retirement_id is None:
            by_order[bid_id].retirement = retirement
        made.append(retirement)
    return made
