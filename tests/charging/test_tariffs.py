"""Tariff validation and pricing: integer minor units, rounding, restrictions, refusals."""

import datetime as dt

import pytest

from charging import errors, tariffs
from charging.tariffs import Period

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 10, 30, tzinfo=UTC)  # a Monday


def _elements(*components, restrictions=None):
    element = {"price_components": [dict(c, step_size=1) for c in components]}
    if restrictions:
        element["restrictions"] = restrictions
    return element


def test_hourly_periods_split_energy_at_clock_hours_and_add_up_exactly():
    # given: 10:30 -> 12:15, 0 -> 10_001 Wh, linear
    samples = [(T0, 0), (T0 + dt.timedelta(minutes=105), 10_001)]

    # when
    periods = tariffs.hourly_periods(samples)

    # then
    assert [p.start.hour for p in periods] == [10, 11, 12]
    assert sum(p.energy_wh for p in periods) == 10_001
    assert [p.energy_wh for p in periods] == [2857, 5715, 1429]


def test_energy_time_and_flat_are_priced_in_minor_units_rounded_half_up():
    # given: 0.333 EUR/kWh, 1.00 EUR/h, 0.25 EUR flat
    elements = tariffs.tariff_elements_clean(
        [
            _elements(
                {"type": "ENERGY", "price": "0.333"},
                {"type": "TIME", "price": "1.00"},
                {"type": "FLAT", "price": "0.25"},
            )
        ],
        "EUR",
    )
    periods = [
        Period(T0, T0 + dt.timedelta(minutes=30), 1500),
        Period(T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=90), 3000),
    ]

    # when
    priced = tariffs.price_periods(
        elements=elements, currency="EUR", periods=periods, time_zone="UTC"
    )

    # then: energy 4.5 kWh * 33.3 ct = 149.85 -> 150; period lines 49.95 -> 50, then 150 - 50
    assert priced.energy_minor == 150
    assert [p["energy_minor"] for p in priced.periods] == [50, 100]
    assert priced.time_minor == 150  # 1.5 h * 100 ct
    assert priced.flat_minor == 25
    assert priced.total_minor == 325


def test_time_of_day_restrictions_pick_the_first_matching_element():
    # given: 0.50 EUR/kWh from 11:00 to 12:00 local, 0.20 otherwise
    elements = tariffs.tariff_elements_clean(
        [
            _elements(
                {"type": "ENERGY", "price": "0.50"},
                restrictions={"start_time": "11:00", "end_time": "12:00"},
            ),
            _elements({"type": "ENERGY", "price": "0.20"}),
        ],
        "EUR",
    )
    periods = [
        Period(T0, T0 + dt.timedelta(minutes=30), 1000),
        Period(T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=90), 1000),
    ]

    # when
    priced = tariffs.price_periods(
        elements=elements, currency="EUR", periods=periods, time_zone="UTC"
    )

    # then
    assert [p["energy_minor"] for p in priced.periods] == [20, 50]


def test_a_negative_price_is_refused():
    with pytest.raises(errors.NegativeTariff) as info:
        tariffs.tariff_elements_clean([_elements({"type": "ENERGY", "price": "-0.01"})], "EUR")
    assert (info.value.code, info.value.status) == ("tariff_negative", 400)


@pytest.mark.parametrize(
    "elements",
    [
        [],
        [_elements({"type": "PARKING_TIME", "price": "1"})],
        [_elements({"type": "ENERGY", "price": "x"})],
        [_elements({"type": "ENERGY", "price": "1"}, restrictions={"min_kwh": 5})],
        [_elements({"type": "ENERGY", "price": "1"}, restrictions={"start_time": "10:30"})],
        [{"price_components": [{"type": "ENERGY", "price": "1", "step_size": 100}]}],
        # a price past the bound: 9E+999999 took seconds to price and its bill was a 500
        [_elements({"type": "ENERGY", "price": "9E+999999"})],
        [_elements({"type": "FLAT", "price": "1000000.01"})],
    ],
)
def test_tariffs_the_registry_cannot_price_exactly_are_refused(elements):
    with pytest.raises(errors.InvalidTariff):
        tariffs.tariff_elements_clean(elements, "EUR")


def test_the_highest_price_is_taken_and_a_bill_beyond_64_bits_is_refused():
    elements = tariffs.tariff_elements_clean(
        [_elements({"type": "ENERGY", "price": "1000000"})], "BHD"
    )  # three minor digits: 10^9 minor units a kWh
    hour = dt.timedelta(hours=1)

    def price(wh: int) -> tariffs.Priced:
        return tariffs.price_periods(
            elements=elements,
            currency="BHD",
            periods=[Period(T0, T0 + hour, wh)],
            time_zone="UTC",
        )

    assert price(9_000_000_000_000).total_minor == 9 * 10**18  # 9e9 kWh: still fits
    with pytest.raises(errors.BillOutOfRange) as info:
        price(10_000_000_000_000)
    assert (info.value.code, info.value.status) == ("bill_out_of_range", 400)


def test_a_stored_tariff_priced_beyond_the_bound_is_refused_at_billing_not_priced():
    elements = [_elements({"type": "ENERGY", "price": "9E+99999999"})]  # Fraction(): minutes
    with pytest.raises(errors.BillOutOfRange):
        tariffs.price_periods(
            elements=elements,
            currency="EUR",
            periods=[Period(T0, T0 + dt.timedelta(hours=1), 1000)],
            time_zone="UTC",
        )
