"""Community bills at market prices: the energy market's cleared prices of the community's
grid area, through the `consumers.price_lookups` hook the market fills."""

import datetime as dt

import pytest
from django.utils import timezone

from consumers import reports, services
from market.models import SlotClearing
from registry.hooks import HOOKS
from tests.assets.factories import DeviceFactory, GridAreaFactory, MeterFactory
from tests.consumers.factories import CommunityFactory, SiteFactory, consent, member, site_meter
from tests.consumers.test_communities import _readings
from tests.factories import member_of
from tests.market.factories import EnergyMarketFactory

DAY = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERIOD = {"start": DAY, "end": DAY + dt.timedelta(hours=4)}


@pytest.fixture
def priced_world():
    """Two consenting households and a plant, four hours: dynamic key, 20 minor per kWh."""
    community = CommunityFactory(internal_price_minor_per_kwh=20)
    admin = member_of(community.organisation)
    plant = DeviceFactory(organisation=community.organisation, grid_area=community.grid_area)
    services.community_device_add(actor=admin, community_id=community.pk, device_id=plant.pk)
    _readings(MeterFactory(device=plant), [1000, 1000, 200, 0])
    members = []
    for values in ([400, 700, 300, 100], [500, 500, 100, 50]):
        site = SiteFactory(grid_area=community.grid_area)
        link = site_meter(site)
        _readings(link.meter, values)
        consent(site, community.organisation, [link], purpose="community")
        members.append(member(community, site.household.organisation, link.meter, site=site))
    return community, admin, members


def _clear(market, start, price, volume_wh=100):
    return SlotClearing.objects.create(
        market=market, slot_start=start, price=price, volume_wh=volume_wh, orders_count=2,
        cleared_at=timezone.now(),
    )  # fmt: skip


@pytest.mark.django_db
def test_members_bills_at_the_cleared_prices_fall_back_where_nothing_cleared(priced_world):
    # given an energy market of the grid area with 15-minute slots: hour 0 at 150,000 per MWh,
    # hour 1 half at 200,000 and half at 300,000 (same volumes), hour 2 not cleared, hour 3
    # only its first quarter at 90,000; and markets that must not count
    community, admin, (a, b) = priced_world
    market = EnergyMarketFactory(grid_area=community.grid_area, currency="EUR")
    quarter = dt.timedelta(minutes=15)
    for q in range(4):
        _clear(market, DAY + q * quarter, 150_000)
        _clear(market, DAY + dt.timedelta(hours=1) + q * quarter, 200_000 if q < 2 else 300_000)
    _clear(market, DAY + dt.timedelta(hours=3), 90_000)
    other_currency = EnergyMarketFactory(grid_area=community.grid_area, currency="SEK")
    other_area = EnergyMarketFactory(grid_area=GridAreaFactory(), currency="EUR")
    for stranger in (other_currency, other_area):
        _clear(stranger, DAY + dt.timedelta(hours=2), 999_999)

    # when
    report = reports.community_allocation_read(user=admin, community_id=community.pk, **PERIOD)

    # then (dynamic key: hour 0 A 400 B 500, export 50/50; hour 1 A 583 B 417, imports 117/83;
    # hour 2 A 150 B 50, imports 150/50; hour 3 nothing produced, imports 100/50)
    rows = {row["member_id"]: row for row in report["members"]}
    assert rows[a.pk]["market"] == {
        # (117 x 250,000 + 150 x 20,000 + 100 x 90,000) / 1,000,000 = 41.25
        "import_cost_minor": 41,
        "export_earnings_minor": 7,  # 50 x 150,000 / 1,000,000 = 7.5
        "allocated_value_minor": 208,  # 400 x 150,000 + 583 x 250,000 + 150 x 20,000
    }
    assert rows[b.pk]["market"] == {
        "import_cost_minor": 26,  # 83 x 250,000 + 50 x 20,000 + 50 x 90,000 = 26.25 (M)
        "export_earnings_minor": 7,
        "allocated_value_minor": 180,  # 500 x 150,000 + 417 x 250,000 + 50 x 20,000
    }
    assert rows[a.pk]["amount_minor"] == (400 + 583 + 150) * 20 // 1000  # internal, as before
    assert report["market_prices"] == {"cleared_intervals": 3, "fallback_intervals": 1}
    assert [i["market_price_minor_per_mwh"] for i in report["intervals"]] == [
        150_000,
        250_000,
        None,
        90_000,
    ]


@pytest.mark.django_db
def test_without_an_energy_market_every_interval_is_at_the_internal_price(priced_world):
    # given no market in the community's grid area
    community, admin, (a, _b) = priced_world

    # when
    report = reports.community_allocation_read(user=admin, community_id=community.pk, **PERIOD)

    # then A's imports (117 + 150 + 100 Wh) at 20 per kWh, floored once: 7.34 -> 7
    assert report["market_prices"] == {"cleared_intervals": 0, "fallback_intervals": 4}
    assert {row["member_id"]: row for row in report["members"]}[a.pk]["market"][
        "import_cost_minor"
    ] == 7


def test_the_market_fills_the_price_hook():
    from market.selectors import energy_cleared_prices

    assert energy_cleared_prices in HOOKS["consumers.price_lookups"]
