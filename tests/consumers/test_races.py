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


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_distributions_of_one_community_at_once_distribute_each_hour_once():
    # given a community whose operator holds two hours of a shared plant's certificates
    from certificates import services as certificate_services
    from certificates.models import Bundle
    from consumers.models import CommunityDistribution
    from tests.certificates.factories import DAY, add_readings, device_with_owners
    from tests.consumers.factories import consent, member
    from tests.factories import member_of

    community = CommunityFactory()
    operator = member_of(community.organisation)
    plant, _ = device_with_owners(producer=community.organisation, grid_area=community.grid_area)
    add_readings(plant, start=DAY, hours=2, wh=lambda i: 1000 + i)
    services.community_device_add(actor=operator, community_id=community.pk, device_id=plant.pk)
    site = SiteFactory(grid_area=community.grid_area)
    link = site_meter(site)
    add_readings(link.meter.device, start=DAY, hours=2, wh=lambda i: 600, meter=link.meter)
    joined = member(community, site.household.organisation, link.meter, site=site)
    consent(site, community.organisation, [link], purpose="community")
    end = DAY + dt.timedelta(hours=2)
    certificate_services.certificate_issue(
        actor="system:test", device_id=plant.pk, period_start=DAY, period_end=end
    )

    def distribute():
        return services.community_certificates_distribute(
            actor=operator, community_id=community.pk, start=DAY, end=end
        )

    # when
    results = run_in_threads(distribute, distribute)

    # then one call distributed both hours, the other skipped them, nothing twice
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(len(r.distributions) for r in results) == [0, 2]
    assert CommunityDistribution.objects.count() == 2
    held = Bundle.objects.filter(account_id=joined.account_id, status=Bundle.Status.ACTIVE)
    assert sum(b.volume_wh for b in held) == 1200
