"""An energy market whose slots cleared at known prices around the contracts' issuance DAY,
for PPAs indexed to it."""

import datetime as dt

from market import services as market
from tests.certificates.factories import DAY
from tests.market.factories import EnergyMarketFactory, trader

QUARTER = dt.timedelta(minutes=15)
HOUR = dt.timedelta(hours=1)


def cleared_market(prices: dict[int, list[tuple[int, int]]], **kwargs):
    """An energy market with, for hour h of DAY, one cleared 15-minute slot per (price, Wh)
    in prices[h] (slot q of the hour for the q-th pair), each a seller's offer and a
    buyer's bid at that price, cleared through the market's own services."""
    energy = EnergyMarketFactory(**kwargs)
    seller, buyer = trader(0), trader(1_000_000)
    for hour, slots in prices.items():
        for q, (price, wh) in enumerate(slots):
            slot = DAY + hour * HOUR + q * QUARTER
            for who, side in ((seller, "sell"), (buyer, "buy")):
                market.order_place(
                    actor=who.user,
                    market_id=energy.pk,
                    side=side,
                    limit_price=price,
                    quantity_wh=wh,
                    account_id=who.account.pk,
                    slot_start=slot,
                    now=slot - HOUR,
                )
            clearing = market.slot_clear(
                market_id=energy.pk, slot_start=slot, now=slot - dt.timedelta(minutes=1)
            )
            assert (clearing.price, clearing.volume_wh) == (price, wh)
    return energy


def index_terms(energy, **overrides) -> dict:
    return {
        "market": energy.code,
        "spread_per_mwh_minor": -500,
        "floor_per_mwh_minor": 7_000,
        "cap_per_mwh_minor": 12_000,
        "fallback_per_mwh_minor": 6_000,
    } | overrides
