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
)
def test_never_above_max_buy_never_below_min_sell_never_below_the_reserve(
    produced, consumed, charge, reserve, min_sell, max_buy, low, spread, min_qty
):
    band = Band(low, low + spread, min_qty)
    intent = decide(
        Forecast(produced, consumed, 1, 1),
        preferences=Preferences(min_sell, max_buy, reserve),
        band=band,
        battery_charge_wh=charge,
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


def test_the_next_open_slot_is_the_first_whose_gate_closes_later():
    market = EnergyMarketFactory.build(slot_minutes=15, gate_closure_minutes=5)
    at = dt.datetime(2026, 3, 5, 12, 9, 59, tzinfo=dt.UTC)
    assert next_open_slot(market, at) == dt.datetime(2026, 3, 5, 12, 15, tzinfo=dt.UTC)
    at = dt.datetime(2026, 3, 5, 12, 10, tzinfo=dt.UTC)  # 12:15's gate closes now
    assert next_open_slot(market, at) == dt.datetime(2026, 3, 5, 12, 30, tzinfo=dt.UTC)
