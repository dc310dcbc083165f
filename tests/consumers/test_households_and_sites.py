"""Households onboard without a company; sites are confirmed; meters are linked by role."""

import datetime as dt

import pytest

from accounts.models import Organisation
from assets.models import Reading
from consumers import services
from consumers.metering_point import metering_point_problem, metering_point_with_check
from consumers.models import Household, Site, SiteMeter
from registry.errors import DomainError
from tests.assets.factories import (
    DeviceFactory,
    GridAreaFactory,
    MeterFactory,
    add_key,
    hours_ago,
    interval_row,
    signing_key,
)
from tests.consumers.factories import (
    CommunityFactory,
    HouseholdFactory,
    SiteFactory,
    member,
    new_metering_point,
    site_meter,
)
from tests.factories import UserFactory, issuing_body_user, member_of
from tests.registry.support import events_since, last_event_id, row_counts


def test_metering_point_check_digit():
    # given a GS1 body and its check digit
    good = metering_point_with_check("87152000000000001")

    # then the right digit passes and every other one is refused
    assert metering_point_problem(good) is None
    for digit in "0123456789":
        if digit != good[-1]:
            assert "check digit" in metering_point_problem(good[:-1] + digit)
    assert metering_point_problem("12345") is not None
    assert metering_point_problem("87152000000000001X") is not None


@pytest.mark.django_db
def test_a_person_registers_a_household_with_one_event():
    # given a login with no organisation
    user = UserFactory()
    before = last_event_id()

    # when
    household = services.household_register(
        actor=user, name="Alex", street="1 Way", postcode="10115", city="Berlin", country="DE"
    )

    # then an approved household organisation with an account, and no name in the ledger
    org = household.organisation
    assert org.status == Organisation.Status.APPROVED and org.is_producer
    assert org.accounts.count() == 1
    (event,) = events_since(before)
    assert event["type"] == "household.registered"
    assert "Alex" not in str(event) and "1 Way" not in str(event)


@pytest.mark.django_db
def test_a_second_household_for_one_login_is_refused():
    # given
    household = HouseholdFactory()
    counts = row_counts(Household, Organisation)

    # when / then
    with pytest.raises(DomainError) as exc:
        services.household_register(
            actor=household.person, name="A", street="s", postcode="p", city="c", country="DE"
        )
    assert exc.value.code == "household_exists"
    assert row_counts(Household, Organisation) == counts


@pytest.mark.django_db
def test_site_register_checks_the_metering_point_and_waits_for_confirmation():
    # given
    household = HouseholdFactory()
    area = GridAreaFactory()
    bad = new_metering_point()[:-1] + "X"
    before = last_event_id()

    # when a wrong id, then a right one
    with pytest.raises(DomainError) as exc:
        services.site_register(
            actor=household.person,
            household_id=household.pk,
            name="Home",
            metering_point_id=bad,
            grid_area_id=area.pk,
            street="s",
            postcode="p",
            city="c",
        )
    assert exc.value.code == "metering_point_invalid" and events_since(before) == []
    site = services.site_register(
        actor=household.person,
        household_id=household.pk,
        name="Home",
        metering_point_id=new_metering_point(),
        grid_area_id=area.pk,
        street="s",
        postcode="p",
        city="c",
    )

    # then
    assert site.status == Site.Status.PENDING
    assert [e["type"] for e in events_since(before)] == ["site.registered"]


@pytest.mark.django_db
def test_site_confirmed_by_the_issuing_body_or_a_community_admin_not_by_others():
    # given a pending site whose household applied to a community
    site = SiteFactory(status=Site.Status.PENDING)
    community = CommunityFactory(grid_area=site.grid_area)
    link = site_meter(site)
    member(community, site.household.organisation, link.meter)
    stranger = member_of(
        Organisation.objects.create(
            legal_name="X", country="DE", registration_id="X1", status="approved", is_trader=True
        )
    )
    community_admin = member_of(community.organisation)

    # when a stranger tries
    with pytest.raises(DomainError) as exc:
        services.site_confirm(actor=stranger, site_id=site.pk)
    assert exc.value.code == "not_site_confirmer"

    # then the community's admin may
    before = last_event_id()
    services.site_confirm(actor=community_admin, site_id=site.pk, reason="visited")
    site.refresh_from_db()
    assert site.status == Site.Status.CONFIRMED
    assert [e["type"] for e in events_since(before)] == ["site.confirmed"]
    # and a decided site cannot be decided again
    with pytest.raises(DomainError) as exc:
        services.site_reject(actor=issuing_body_user(), site_id=site.pk, reason="late")
    assert exc.value.code == "site_status_conflict"


@pytest.mark.django_db
def test_the_issuing_body_rejects_a_site_with_a_reason_and_one_event():
    # given
    site = SiteFactory(status=Site.Status.PENDING)
    before = last_event_id()

    # when
    services.site_reject(actor=issuing_body_user(), site_id=site.pk, reason="no proof of address")

    # then
    site.refresh_from_db()
    assert (site.status, site.status_reason) == (Site.Status.REJECTED, "no proof of address")
    (event,) = events_since(before)
    assert (event["type"], event["subject"]) == ("site.rejected", [f"site:{site.pk}"])
    assert event["data"] == {"site_id": site.pk, "reason": "no proof of address"}


@pytest.mark.django_db
def test_meter_link_refuses_another_organisations_meter_and_a_second_site():
    # given
    site = SiteFactory()
    own = MeterFactory(
        device=DeviceFactory(organisation=site.household.organisation, grid_area=site.grid_area)
    )
    foreign = MeterFactory(device=DeviceFactory(grid_area=site.grid_area))

    # when / then
    with pytest.raises(DomainError) as exc:
        services.site_meter_link(
            actor=site.household.person, site_id=site.pk, meter_id=foreign.pk, role="import"
        )
    assert exc.value.code == "meter_not_linkable"
    link = services.site_meter_link(
        actor=site.household.person, site_id=site.pk, meter_id=own.pk, role="import"
    )
    assert link.role == SiteMeter.Role.IMPORT
    other = SiteFactory(household=site.household, grid_area=site.grid_area)
    with pytest.raises(DomainError) as exc:
        services.site_meter_link(
            actor=site.household.person, site_id=other.pk, meter_id=own.pk, role="export"
        )
    assert exc.value.code == "meter_not_linkable"


@pytest.mark.django_db
def test_site_readings_go_through_the_signed_pipeline_and_refuse_another_sites_meter():
    # given two confirmed sites of one household, each with a signing import meter
    site = SiteFactory()
    other = SiteFactory(household=site.household, grid_area=site.grid_area)
    key = signing_key(7)
    mine = site_meter(site)
    theirs = site_meter(other)
    add_key(mine.meter, key, valid_from=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    start = hours_ago(5)
    person = site.household.person

    # when a row names the other site's meter
    with pytest.raises(DomainError) as exc:
        services.site_readings_submit(
            actor=person,
            site_id=site.pk,
            rows=[
                interval_row(mine.meter, start, 500, key=key),
                interval_row(theirs.meter, start, 500),
            ],
        )

    # then nothing is stored
    assert exc.value.code == "meter_of_another_site"
    assert Reading.objects.count() == 0

    # and the site's own signed readings are stored, once (a re-send is a duplicate)
    rows = [interval_row(mine.meter, start, 500, key=key)]
    first = services.site_readings_submit(actor=person, site_id=site.pk, rows=rows)
    again = services.site_readings_submit(actor=person, site_id=site.pk, rows=rows)
    assert first.stored == 1 and again.stored == 0 and again.duplicates == 1
    assert Reading.objects.get().is_signed
