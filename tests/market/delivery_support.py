"""Helpers of the delivery settlement suites: a cleared slot, meters and their readings."""

import datetime as dt
from dataclasses import dataclass

from assets.models import Meter, Reading, ReadingBatch
from market import services
from market.models import Market, Order, SettlementAccount, SlotClearing
from tests.certificates.factories import DeviceFactory, MeterFactory
from tests.market.factories import Buyer, EnergyMarketFactory, deposit, next_slot, trader

SLOT = dt.timedelta(minutes=15)
MINUTE = dt.timedelta(minutes=1)


@dataclass
class Slot:
    market: Market
    clearing: SlotClearing
    sellers: list[Buyer]
    buyers: list[Buyer]
    orders: list[Order]

    @property
    def start(self) -> dt.datetime:
        return self.clearing.slot_start

    @property
    def after(self) -> dt.datetime:
        """A minute after the slot ended."""
        return self.start + SLOT + MINUTE


def cleared_slot(
    offers,
    bids,
    *,
    sellers=None,
    ahead=dt.timedelta(days=1),
    slot=None,
    retire=None,
    **market_kwargs,
) -> Slot:
    """A cleared slot: `offers` and `bids` are (party index, Wh, price); parties are new
    traders (buyers funded with EUR 1,000), or `sellers` given. `retire` maps a buyer's
    index to the `retire_on_delivery` claim of its bids."""
    market = EnergyMarketFactory(**market_kwargs)
    slot = slot or next_slot(market, ahead=ahead)
    sellers = sellers or [trader(0) for _ in range(1 + max(i for i, _, _ in offers))]
    buyers = [trader(100_000) for _ in range(1 + max(i for i, _, _ in bids))]
    orders = []
    for parties, side, specs in ((sellers, "sell", offers), (buyers, "buy", bids)):
        for index, wh, price in specs:
            who = parties[index]
            orders.append(
                services.order_place(
                    actor=who.user,
                    market_id=market.pk,
                    side=side,
                    limit_price=price,
                    quantity_wh=wh,
                    account_id=who.account.pk,
                    slot_start=slot,
                    retire_on_delivery=(retire or {}).get(index) if side == "buy" else None,
                    now=slot - dt.timedelta(hours=1),
                ).order
            )
    clearing = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot - MINUTE)
    for order in orders:
        order.refresh_from_db()
    return Slot(market, clearing, sellers, buyers, orders)


def meter_for(who: Buyer, kind: str = Meter.Kind.GENERATION) -> Meter:
    device = DeviceFactory(organisation=who.account.organisation)
    return MeterFactory(device=device, kind=kind)


def read(meter: Meter, start: dt.datetime, wh: int, *, minutes: int = 15) -> Reading:
    batch = ReadingBatch.objects.create(
        organisation=meter.device.organisation,
        device=meter.device,
        meter=meter,
        status=ReadingBatch.Status.ACCEPTED,
        size=1,
        merkle_root="0" * 64,
    )
    return Reading.objects.create(
        device=meter.device,
        meter=meter,
        batch=batch,
        start=start,
        end=start + dt.timedelta(minutes=minutes),
        wh=wh,
        index_in_batch=0,
    )


def produced(who: Buyer, start: dt.datetime, wh: int) -> Reading:
    return read(meter_for(who, Meter.Kind.GENERATION), start, wh)


def consumed(who: Buyer, start: dt.datetime, wh: int) -> Reading:
    return read(meter_for(who, Meter.Kind.CONSUMPTION), start, wh)


def money(who) -> tuple[int, int]:
    account = SettlementAccount.objects.filter(organisation_id=who.account.organisation_id).first()
    return (account.available, account.reserved) if account else (0, 0)


def operator_money(market: Market) -> tuple[int, int]:
    account = SettlementAccount.objects.filter(organisation_id=market.operator_id).first()
    return (account.available, account.reserved) if account else (0, 0)


def fund(who_or_org_id, amount: int) -> None:
    org = who_or_org_id if isinstance(who_or_org_id, int) else who_or_org_id.account.organisation_id
    deposit(org, amount)
