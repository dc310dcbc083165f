"""Trading agents' forecast and decision rules (pure): the seasonal average and the order
an agent wants for a slot never break its owner's preferences."""

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.agents.decision import Band, Preferences, decide
from market.agents.forecast import Forecast, history_starts, seasonal_average, slot_forecast
from market.agents.services import next_open_slot
from tests.market.factories import EnergyMarketFactory

wh = st.integers(min_value=0, max_value=10**9)
prices = st.integers(min_value=0, max_value=10**6)


def test_the_forecast_averages_the_known_days_and_leaves_out_missing_ones():
    assert seasonal_average([100, None, 201]) == (150, 2)
    assert seasonal_average([None, None]) == (None, 0)
    assert slot_forecast(production=[10, 20], consumption=[None]) == Forecast(15, None, 2, 0)


def test_the_history_is_the_same_slot_on_earlier_days():
    slot = dt.datetime(2026, 3, 5, 12, 15, tzinfo=dt.UTC)
    assert history_starts(slot, 2) == [slot - dt.timedelta(days=1), slot - dt.timedelta(days=2)]


def test_surplus_is_offered_at_the_minimum_sell_price_and_explained():
    intent = decide(
        Forecast(1_000, 300, 7, 7),
        preferences=Preferences(min_sell_price=4_000, max_buy_price=9_000, reserve_wh=0),
        band=Band(0, 100_000, 1),
        battery_charge_wh=None,
    )
    assert (intent.side, intent.quantity_wh, intent.price, intent.reason) == (
        "sell",
        700,
        4_000,
        "surplus",
    )
    assert "1000 Wh produced, 300 Wh consumed" in intent.explanation


def test_a_deficit_is_bid_for_at_the_maximum_buy_price_within_the_band():
    intent = decide(
        Forecast(0, 500, 7, 7),
        preferences=Preferences(min_sell_price=4_000, max_buy_price=900_000, reserve_wh=0),
        band=Band(0, 100_000, 1),
        battery_charge_wh=None,
    )
    assert (intent.side, intent.quantity_wh, intent.price) == ("buy", 500, 100_000)


def test_no_history_below_minimum_and_prices_outside_the_band_trade_nothing():
    prefs = Preferences(min_sell_price=4_000, max_buy_price=9_000, reserve_wh=0)
    band = Band(5_000, 6_000, 100)
    for forecast, reason in [
        (Forecast(None, None, 0, 0), "no_history"),
        (Forecast(50, 0, 7, 0), "below_min_quantity"),
        (Forecast(500, 500, 7, 7), "balanced"),
    ]:
        assert decide(forecast, preferences=prefs, band=band, battery_charge_wh=None).reason == (
            reason
        )
    high = Preferences(min_sell_price=7_000, max_buy_price=1_000, reserve_wh=0)
    assert (
        decide(Forecast(500, 0, 7, 7), preferences=high, band=band, battery_charge_wh=None).reason
        == "min_sell_above_band"
    )
    assert (
        decide(Forecast(0, 500, 7, 7), preferences=high, band=band, battery_charge_wh=None).reason
        == "max_buy_below_band"
    )


# nine drawn values per example: on a loaded machine their generation trips too_slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    produced=st.none() | wh,
    consumed=st.none() | wh,
    charge=st.none() | wh,
    reserve=wh,
    min_sell=prices,
    max_buy=prices,
    low=prices,
    spread=prices,
    min_qty=st.integers(min_value=1, max_value=10_000),
    slots_left=st.integers(min_value=1, max_value=96),
)
def test_never_above_max_buy_never_below_min_sell_never_below_the_reserve(
    produced, consumed, charge, reserve, min_sell, max_buy, low, spread, min_qty, slots_left
):
    band = Band(low, low + spread, min_qty)
    intent = decide(
        Forecast(produced, consumed, 1, 1),
        preferences=Preferences(min_sell, max_buy, reserve),
        band=band,
        battery_charge_wh=charge,
        slots_left=slots_left,
    )
    if not intent.side:
        assert (intent.quantity_wh, intent.price) == (0, None)
        return
    assert band.price_min <= intent.price <= band.price_max
    assert intent.quantity_wh >= min_qty
    net = (produced or 0) - (consumed or 0)
    if intent.side == "buy":
        assert intent.price <= max_buy
        # buys only what production and the battery above its reserve cannot cover
        assert intent.quantity_wh <= -net
    else:
        assert intent.price >= min_sell
        # what stays in the battery after the slot is at least the reserve (or, without a
        # known battery, nothing beyond the surplus is sold)
        if charge is None:
            assert intent.quantity_wh <= net
        else:
            assert charge + net - intent.quantity_wh >= reserve


PREFS = Preferences(min_sell_price=4_000, max_buy_price=9_000, reserve_wh=1_000)
BAND = Band(0, 100_000, 1)


def test_the_battery_covers_the_slots_deficit_then_offers_an_even_share_of_the_rest():
    # (produced, consumed, charge, slots left) -> (side, quantity)
    table = [
        ((0, 0, 5_000, 4), ("sell", 1_000)),  # 4,000 spare over 4 slots
        ((0, 0, 5_000, 1), ("sell", 4_000)),  # the day's last slot: all of it
        ((300, 0, 5_000, 4), ("sell", 1_300)),  # the surplus, and the share
        ((0, 1_000, 5_000, 3), ("sell", 1_000)),  # 1,000 covers the deficit, 3,000 / 3
        ((0, 5_000, 5_000, 3), ("buy", 1_000)),  # the spare covers 4,000 of the deficit
        ((0, 0, 1_002, 4), ("", 0)),  # 2 Wh over 4 slots: 0 Wh in this one
        ((2_000, 0, 400, 4), ("sell", 1_400)),  # below the reserve: refill 600 first
        ((0, 500, 400, 4), ("buy", 500)),  # below the reserve: no covering, no refill bid
    ]
    for (produced, consumed, charge, left), expected in table:
        intent = decide(
            Forecast(produced, consumed, 7, 7),
            preferences=PREFS,
            band=BAND,
            battery_charge_wh=charge,
            slots_left=left,
        )
        assert (intent.side, intent.quantity_wh) == expected, (produced, consumed, charge, left)
    explained = decide(
        Forecast(0, 1_000, 7, 7),
        preferences=PREFS,
        band=BAND,
        battery_charge_wh=5_000,
        slots_left=3,
    ).explanation
    assert "1000 Wh of it cover this slot's deficit" in explained
    assert "the 3000 Wh left above the reserve are spread over the 3 slots left in the day" in (
        explained
    )
    assert "1000 Wh offered in this one" in explained


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    charge=wh,
    reserve=wh,
    slots=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=96
    ),
    min_qty=st.integers(min_value=1, max_value=10_000),
)
def test_over_a_day_the_battery_never_sells_more_than_its_charge_above_the_reserve(
    charge, reserve, slots, min_qty
):
    # A day of slots, each decided with the charge its run reads: the battery gives what
    # the decision planned for it (covering the deficit, the share it offered) and takes
    # what a surplus refilled. What it sold (an offer beyond the slot's own surplus) adds
    # up, over the day, to at most its charge above the reserve plus those refills.
    prefs = Preferences(min_sell_price=0, max_buy_price=10**6, reserve_wh=reserve)
    band = Band(0, 10**6, min_qty)
    sold_from_battery = refilled = 0
    start = charge
    for index, (produced, consumed) in enumerate(slots):
        intent = decide(
            Forecast(produced, consumed, 1, 1),
            preferences=prefs,
            band=band,
            battery_charge_wh=charge,
            slots_left=len(slots) - index,
        )
        net = produced - consumed
        traded = intent.quantity_wh if intent.side == "sell" else -intent.quantity_wh
        # the battery's part of the plan: what it gives (or, refilling, takes)
        # (no order: the battery still covers what it can of the slot's deficit)
        used = traded - net if intent.side else min(max(charge - reserve, 0), max(0, -net))
        if intent.side == "sell":
            sold_from_battery += max(0, intent.quantity_wh - max(net, 0))
        refilled += max(0, -used)
        charge -= used
        if used > 0:  # the battery never gives below its reserve
            assert charge >= reserve
    assert sold_from_battery <= max(0, start - reserve) + refilled


def test_the_next_open_slot_is_the_first_whose_gate_closes_later():
    market = EnergyMarketFactory.build(slot_minutes=15, gate_closure_minutes=5)
    at = dt.datetime(2026, 3, 5, 12, 9, 59, tzinfo=dt.UTC)
    assert next_open_slot(market, at) == dt.datetime(2026, 3, 5, 12, 15, tzinfo=dt.UTC)
    at = dt.datetime(2026, 3, 5, 12, 10, tzinfo=dt.UTC)  # 12:15's gate closes now
    assert next_open_slot(market, at) == dt.datetime(2026, 3, 5, 12, 30, tzinfo=dt.UTC)
