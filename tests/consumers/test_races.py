"""Races on PostgreSQL: two overlapping grants, two joins of one organisation, at once."""

import datetime as dt

import pytest
from django.utils import timezone

from consumers import services
from consumers.models import CommunityMember, Consent
from registry.errors import DomainError
from tests.assets.test_postgres import run_in_threads
from tests.conftest import requires_postgres
from tests.consumers.factories import CommunityFactory, SiteFactory, site_meter
from tests.factories import OrganisationFactory


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_grants_at_once_make_one_consent():
    # given
    site = SiteFactory()
    link = site_meter(site)
    supplier = OrganisationFactory(is_producer=False, is_trader=True)

    def grant(days: int):
        return lambda: services.consent_grant(
            actor=site.household.person, site_id=site.pk, grantee_id=supplier.pk,
            purpose="supply", site_meter_ids=[link.pk], resolution="hourly",
            valid_to=timezone.now() + dt.timedelta(days=days),
        )  # fmt: skip

    # when
    results = run_in_threads(grant(10), grant(20))

    # then one grant, and the other refused as overlapping
    assert Consent.objects.count() == 1
    refused = [r for r in results if isinstance(r, DomainError)]
    assert [r.code for r in refused] == ["consent_overlaps"]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_one_organisation_joining_twice_at_once_is_one_member():
    # given
    site = SiteFactory()
    link = site_meter(site)
    community = CommunityFactory(grid_area=site.grid_area)
    account = site.household.organisation.accounts.first()

    def join():
        return services.community_member_join(
            actor=site.household.person, community_id=community.pk,
            organisation_id=site.household.organisation_id,
            consumption_meter_id=link.meter_id, account_id=account.pk, site_id=site.pk,
        )  # fmt: skip

    # when
    results = run_in_threads(join, join)

    # then
    assert CommunityMember.objects.count() == 1
    assert [r.code for r in results if isinstance(r, DomainError)] == [
        "community_membership_conflict"
    ]
