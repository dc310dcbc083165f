"""The reports for many sites or communities at once: the same answers as one read each, in a
number of queries that does not grow with the sites, communities, members or hours."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from consumers import reports
from consumers.errors import CommunityNotFound, ConsentRequired, SiteNotFound
from consumers.models import CommunityDevice, DataAccess
from tests.assets.factories import DeviceFactory, MeterFactory
from tests.consumers.factories import (
    CommunityFactory,
    HouseholdFactory,
    SiteFactory,
    consent,
    member,
    site_meter,
)
from tests.consumers.test_communities import _readings
from tests.consumers.test_hourly_matching import _certificate
from tests.factories import member_of

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERIOD = {"start": DAY, "end": DAY + dt.timedelta(hours=4)}


def _queries(call):
    with CaptureQueriesContext(connection) as run:
        result = call()
    return result, len(run.captured_queries)


def _household_sites(count: int):
    """A household with `count` confirmed sites in one grid area, each with an import meter
    that read 4 hours, and one hourly certificate of the area in the household's account."""
    household = HouseholdFactory()
    first = SiteFactory(household=household)
    sites = [first] + [
        SiteFactory(household=household, grid_area=first.grid_area) for _ in range(count - 1)
    ]
    for i, site in enumerate(sites):
        _readings(site_meter(site).meter, [100 * (i + 1)] * 4)
    plant = DeviceFactory(grid_area=first.grid_area)
    _certificate(plant, household.organisation.accounts.first(), DAY, 150, 0)
    return household, sites


def test_many_sites_matching_equals_each_single_read_in_the_same_queries():
    # given
    household, sites = _household_sites(3)
    singles = {
        site.pk: reports.hourly_matching_read(user=household.person, site_id=site.pk, **PERIOD)
        for site in sites
    }
    # when
    one, one_queries = _queries(
        lambda: reports.hourly_matchings_read(
            user=household.person, site_ids=[sites[0].pk], **PERIOD
        )
    )
    many, many_queries = _queries(
        lambda: reports.hourly_matchings_read(
            user=household.person, site_ids=[s.pk for s in sites], **PERIOD
        )
    )
    # then
    assert many_queries == one_queries
    assert one == {sites[0].pk: singles[sites[0].pk]}
    assert many == singles
    assert [many[s.pk]["total"]["consumption_wh"] for s in sites] == [400, 800, 1200]
    assert [many[s.pk]["total"]["matched_wh"] for s in sites] == [100, 150, 150]


def test_each_site_gets_its_report_or_the_refusal_its_single_read_would_raise():
    # given: the household's own site, a stranger's site without a grant, and no site at all
    household, (own,) = _household_sites(1)
    _stranger, (theirs,) = _household_sites(1)
    missing = theirs.pk + 1000
    # when
    results = reports.hourly_matchings_read(
        user=household.person, site_ids=[own.pk, theirs.pk, missing], **PERIOD
    )
    # then
    assert results[own.pk]["total"]["consumption_wh"] == 400
    assert isinstance(results[theirs.pk], ConsentRequired)
    assert isinstance(results[missing], SiteNotFound)
    (record,) = DataAccess.objects.all()
    assert (record.site_id, record.outcome, record.what) == (
        theirs.pk,
        "refused",
        "hourly_matching",
    )
    with pytest.raises(ConsentRequired):
        reports.hourly_matching_read(user=household.person, site_id=theirs.pk, **PERIOD)


def test_the_hourly_matching_api_on_a_year_does_the_queries_of_a_day():
    # given
    household, (site,) = _household_sites(1)
    client = APIClient()
    client.force_authenticate(household.person)
    url = f"/api/v1/sites/{site.pk}/hourly-matching/"
    day = {"start": DAY.isoformat(), "end": (DAY + dt.timedelta(days=1)).isoformat()}
    year_start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    year = {"start": year_start.isoformat(), "end": year_start.replace(year=2027).isoformat()}
    # when
    day_report, day_queries = _queries(lambda: client.get(url, day))
    year_report, year_queries = _queries(lambda: client.get(url, year))
    # then
    assert year_queries == day_queries
    body = year_report.json()
    assert (len(body["hours"]), len(body["days"])) == (8760, 365)
    assert body["total"]["consumption_wh"] == day_report.json()["total"]["consumption_wh"] == 400


def _community_with_households(count: int, **community):
    """A shared plant that produced 1,000 Wh an hour for 4 hours, and `count` household
    members who granted the community's operator their meter's hourly data."""
    community = CommunityFactory(**community)
    plant = DeviceFactory(organisation=community.organisation, grid_area=community.grid_area)
    CommunityDevice.objects.create(community=community, device=plant)
    _readings(MeterFactory(device=plant), [1000] * 4)
    members = []
    for i in range(count):
        site = SiteFactory(grid_area=community.grid_area)
        link = site_meter(site)
        _readings(link.meter, [100 + 10 * i] * 4)
        members.append(member(community, site.household.organisation, link.meter, site=site))
        consent(site, community.organisation, [link], purpose="community")
    return community, members


def test_an_operators_allocations_are_the_same_queries_for_more_communities_and_members():
    # given: one community of 2 households, and another of 4 run by the same operator
    first, _ = _community_with_households(2)
    second, _ = _community_with_households(4, organisation=first.organisation)
    admin = member_of(first.organisation)
    singles = {
        c.pk: reports.community_allocation_read(user=admin, community_id=c.pk, **PERIOD)
        for c in (first, second)
    }
    # when
    one, one_queries = _queries(
        lambda: reports.community_allocations_read(user=admin, community_ids=[first.pk], **PERIOD)
    )
    before = DataAccess.objects.count()
    many, many_queries = _queries(
        lambda: reports.community_allocations_read(
            user=admin, community_ids=[first.pk, second.pk], **PERIOD
        )
    )
    # then: the same answers, every member's read recorded, the same number of queries
    assert many_queries == one_queries
    assert one == {first.pk: singles[first.pk]}
    assert many == singles
    assert DataAccess.objects.count() - before == 6
    assert [row["consumption_wh"] for row in many[second.pk]["members"]] == [
        4 * (100 + 10 * i) for i in range(4)
    ]
    assert many[second.pk]["production_wh"] == 4000


def test_an_operator_is_refused_at_the_first_member_without_a_grant_as_in_a_single_read():
    # given: three members, the second's grant covering none of its meters
    community, members = _community_with_households(3)
    admin = member_of(community.organisation)
    members[1].site.consents.get().meters.clear()
    stranger = CommunityFactory()
    # when
    results = reports.community_allocations_read(
        user=admin, community_ids=[community.pk, stranger.pk], **PERIOD
    )
    # then: granted for the first, refused for the second, the third not read at all
    assert isinstance(results[community.pk], ConsentRequired)
    assert isinstance(results[stranger.pk], CommunityNotFound)
    records = list(DataAccess.objects.order_by("pk").values_list("site_id", "outcome"))
    assert records == [(members[0].site_id, "granted"), (members[1].site_id, "refused")]


def test_a_member_who_left_and_joined_again_with_one_meter_counts_in_both_memberships():
    # given: a household member for hours 0-1, then again from hour 2, with the same meter
    community, (first,) = _community_with_households(1)
    first.left_at = DAY + dt.timedelta(hours=2)
    first.save(update_fields=["left_at"])
    again = member(
        community,
        first.organisation,
        first.consumption_meter,
        site=first.site,
        joined_at=DAY + dt.timedelta(hours=2),
    )
    # when: the household reads its own rows
    report = reports.community_allocation_read(
        user=first.site.household.person, community_id=community.pk, **PERIOD
    )
    # then: each membership has the readings of its own hours (100 Wh an hour)
    rows = {row["member_id"]: row["consumption_wh"] for row in report["members"]}
    assert rows == {first.pk: 200, again.pk: 200}
