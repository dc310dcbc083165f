"""A household buyer's energy slots settle against its sites' import meters (the consumers
app's lookup on the market's `market.site_consumption_lookups` hook)."""

import datetime as dt

import pytest

from consumers.market_consumption import households_consumed_wh
from consumers.models import DataAccess, Site, SiteMeter
from market import services
from market.metering import metered_wh
from tests.consumers.factories import HouseholdFactory, SiteFactory, site_meter
from tests.market.agent_support import delegate, history, run
from tests.market.delivery_support import (
    MINUTE,
    SLOT,
    cleared_slot,
    consumed,
    money,
    produced,
    read,
)
from tests.market.factories import EnergyMarketFactory, next_slot, trader

pytestmark = pytest.mark.django_db


def household_site(buyer, **site_kwargs) -> Site:
    """Make the buyer's organisation a household with a confirmed site."""
    household = HouseholdFactory(organisation=buyer.account.organisation)
    return SiteFactory(household=household, **site_kwargs)


def test_a_household_buyer_settles_against_its_site_meter_not_another_consumption_meter():
    # given a cleared slot of 10 kWh; the seller produced it all
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)])
    (seller,), (buyer,) = slot.sellers, slot.buyers
    produced(seller, slot.start, 10_000)
    # the buyer is a household: its site's import register read 4 kWh, its export 3 kWh;
    # an unrelated device of the household has a consumption meter that read 10 kWh
    site = household_site(buyer)
    read(site_meter(site).meter, slot.start, 4_000)
    read(site_meter(site, SiteMeter.Role.EXPORT).meter, slot.start, 3_000)
    consumed(buyer, slot.start, 10_000)

    # when the slot settles
    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then the buyer took what its import register read (export not netted off), paid for
    # 4 kWh at 5,000 per MWh, and the rest of its escrow came back
    assert (settlement.status, settlement.reason) == ("settled", "")
    assert settlement.delivered_wh == 4_000
    line = settlement.lines.get(side="buy")
    assert (line.metered_wh, line.delivered_wh, line.amount_minor) == (4_000, 4_000, 20)
    assert money(buyer) == (100_000 - 20, 0)
    # its own data, for its own trades: no consent asked, no access record
    assert not DataAccess.objects.exists()


def test_incomplete_site_readings_wait_then_settle_at_fallback():
    # given the household's site has two import meters and one has read only part of it,
    # while a consumption meter on another of its devices has read the whole slot
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)], settlement_grace_minutes=30)
    (seller,), (buyer,) = slot.sellers, slot.buyers
    produced(seller, slot.start, 10_000)
    site = household_site(buyer)
    read(site_meter(site).meter, slot.start, 2_000)
    read(site_meter(site).meter, slot.start, 1_000, minutes=10)
    consumed(buyer, slot.start, 10_000)

    # when settled within the grace period
    waiting = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then it waits for the site's readings (the other meter does not stand in for them)
    assert (waiting.status, waiting.reason) == ("waiting", "missing_readings")
    assert waiting.missing_organisations == [buyer.account.organisation_id]

    # when the grace period is over, it settles with the buyer's consumption counted 0
    done = services.slot_settle(
        clearing_id=slot.clearing.pk, now=slot.start + SLOT + dt.timedelta(minutes=30) + MINUTE
    )
    assert (done.status, done.reason, done.delivered_wh) == (
        "settled",
        "fallback_missing_readings",
        0,
    )
    assert money(buyer) == (100_000, 0)


def test_sites_that_do_not_count_leave_the_household_to_the_fallback_rule():
    # given a household whose only sites are pending, or have no import meter, or lie in
    # another grid area than the market's
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)])
    (buyer,) = slot.buyers
    org = buyer.account.organisation_id
    pending = household_site(buyer, status=Site.Status.PENDING)
    read(site_meter(pending).meter, slot.start, 1_000)
    producing = SiteFactory(household=pending.household)
    read(site_meter(producing, SiteMeter.Role.PRODUCTION).meter, slot.start, 2_000)
    consumed(buyer, slot.start, 7_000)
    end = slot.start + SLOT

    # then the lookup does not know it, and the market counts its consumption meters
    # (the pending site's import meter is a consumption meter of the household too)
    assert (
        households_consumed_wh(organisation_ids=[org], grid_area_id=None, start=slot.start, end=end)
        == {}
    )
    assert metered_wh(
        organisation_ids=[org], production=False, grid_area_id=None, start=slot.start, end=end
    ) == {org: 8_000}

    # a confirmed site with an import meter in another grid area counts only where the
    # market has no grid area
    elsewhere = SiteFactory(household=pending.household)
    read(site_meter(elsewhere).meter, slot.start, 500)
    area = producing.grid_area_id
    assert households_consumed_wh(
        organisation_ids=[org], grid_area_id=None, start=slot.start, end=end
    ) == {org: 500}
    assert (
        households_consumed_wh(organisation_ids=[org], grid_area_id=area, start=slot.start, end=end)
        == {}
    )


def test_a_meter_removed_before_the_slot_ended_is_not_in_place_so_the_site_is_incomplete():
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)])
    (buyer,) = slot.buyers
    org = buyer.account.organisation_id
    site = household_site(buyer)
    meter = site_meter(site).meter
    read(meter, slot.start, 900)
    end = slot.start + SLOT
    assert households_consumed_wh(
        organisation_ids=[org, org + 1000], grid_area_id=None, start=slot.start, end=end
    ) == {org: 900}

    meter.removed_at = slot.start + dt.timedelta(minutes=5)
    meter.save(update_fields=["removed_at"])

    assert households_consumed_wh(
        organisation_ids=[org], grid_area_id=None, start=slot.start, end=end
    ) == {org: None}


def test_a_buyer_without_sites_is_measured_by_its_consumption_meters_as_before():
    # given two buyers of one slot: a household with a site, a company with a device meter
    slot = cleared_slot([(0, 20_000, 5_000)], [(0, 10_000, 5_000), (1, 10_000, 5_000)])
    (seller,), (household, company) = slot.sellers, slot.buyers
    produced(seller, slot.start, 20_000)
    read(site_meter(household_site(household)).meter, slot.start, 6_000)
    consumed(company, slot.start, 3_000)
    consumed(company, slot.start, 4_000)

    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then the company took what its consumption meters read together, the household its site's
    taken = {
        line.order.organisation_id: line.metered_wh
        for line in settlement.lines.filter(side="buy").select_related("order")
    }
    assert taken == {
        household.account.organisation_id: 6_000,
        company.account.organisation_id: 7_000,
    }
    assert settlement.delivered_wh == 13_000


def test_a_household_agent_forecasts_its_consumption_from_its_site_meter():
    # given a household whose site's import meter read 300 Wh in the slot on each of the
    # last 2 days, and an unrelated consumption meter of its devices 5,000 Wh
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyer = trader(100_000)
    site_import = site_meter(household_site(buyer)).meter
    for days in (1, 2):
        read(site_import, slot - dt.timedelta(days=days), 300)
    history(buyer, slot, produced=None, consumed=5_000, days=2)

    # when its agent runs
    decision = run(delegate(market, buyer, history_days=2), slot)

    # then it bids for what the site consumed
    assert (decision.consumption_wh, decision.side, decision.quantity_wh) == (300, "buy", 300)
