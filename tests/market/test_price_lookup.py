"""An energy market's grid area, and the cleared prices it gives community bills."""

import datetime as dt

import pytest
from django.utils import timezone

from market import services
from market.models import Market, SlotClearing
from market.selectors import energy_cleared_prices
from registry.errors import DomainError
from tests.assets.factories import GridAreaFactory
from tests.factories import OrganisationFactory, issuing_body_user
from tests.market.factories import EnergyMarketFactory
from tests.registry.support import events_since, last_event_id, row_counts

HOUR = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)
QUARTER = dt.timedelta(minutes=15)


def _clear(market, start, price, volume_wh):
    SlotClearing.objects.create(
        market=market, slot_start=start, price=price, volume_wh=volume_wh, orders_count=2,
        cleared_at=timezone.now(),
    )  # fmt: skip


def _create(**kwargs):
    return services.market_create(
        actor=issuing_body_user(), code=kwargs.pop("code", "energy-area"), name="Area energy",
        currency="EUR", operator_id=OrganisationFactory().pk, price_min=0, price_max=100_000,
        **kwargs,
    )  # fmt: skip


@pytest.mark.django_db
def test_an_energy_market_is_opened_for_a_grid_area():
    # given
    area = GridAreaFactory()
    before = last_event_id()

    # when
    market = _create(kind="energy", matching="uniform", grid_area_id=area.pk)

    # then
    (event,) = events_since(before)
    assert market.grid_area_id == area.pk
    assert event["type"] == "market.created" and event["data"]["grid_area_id"] == area.pk


@pytest.mark.django_db
def test_only_an_energy_market_has_a_grid_area():
    # given
    area = GridAreaFactory()
    counts = row_counts(Market)
    before = last_event_id()

    # when / then
    for kwargs in ({"grid_area_id": area.pk}, {"kind": "energy", "grid_area_id": area.pk + 999}):
        with pytest.raises(DomainError) as exc:
            _create(**kwargs)
        assert exc.value.code == "invalid_order"
    assert row_counts(Market) == counts
    assert events_since(before) == []


@pytest.mark.django_db
def test_an_hours_price_is_the_volume_weighted_mean_of_the_slots_in_it():
    # given two markets of one area with 15-minute slots, one of them with 60-minute slots
    area = GridAreaFactory()
    quarters = EnergyMarketFactory(grid_area=area)
    hours = EnergyMarketFactory(grid_area=area, slot_minutes=60)
    _clear(quarters, HOUR, 100_000, 100)  # hour 0: 100 Wh x 15 min at 100,000
    _clear(hours, HOUR, 200_000, 100)  #     and 100 Wh x 60 min at 200,000 -> 180,000
    _clear(quarters, HOUR + 4 * QUARTER, 1, 50)  # hour 1: 1 and 2, same weight -> 1.5 -> 2
    _clear(quarters, HOUR + 5 * QUARTER, 2, 50)
    SlotClearing.objects.create(  # nothing crossed: no price, does not count
        market=quarters, slot_start=HOUR + 8 * QUARTER, price=None, volume_wh=0,
        cleared_at=timezone.now(),
    )  # fmt: skip

    # when
    hourly, quarterly = energy_cleared_prices(
        requests=[
            {
                "grid_area_id": area.pk,
                "currency": "EUR",
                "start": HOUR,
                "step_seconds": 3600,
                "n": 3,
            },
            {
                "grid_area_id": area.pk,
                "currency": "EUR",
                "start": HOUR,
                "step_seconds": 900,
                "n": 2,
            },
        ]
    )

    # then
    assert hourly == [180_000, 2, None]
    assert quarterly == [(100 * 100_000 + 100 * 200_000) // 200, 200_000]
    elsewhere = {
        "grid_area_id": GridAreaFactory().pk, "currency": "EUR", "start": HOUR,
        "step_seconds": 3600, "n": 1,
    }  # fmt: skip
    assert energy_cleared_prices(requests=[elsewhere]) == [None]
