"""The consumers state rebuilt from the ledger alone: sites, consents, communities, members,
keys, shared devices and distributions; a row changed behind the services is found."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from certificates import services as certificate_services
from certificates.replay import replay_ledger
from consumers import services
from consumers.models import CommunityDistribution, CommunityMember, Consent, Site
from consumers.replay import replay_consumers
from tests.assets.factories import GridAreaFactory, MeterFactory
from tests.certificates.factories import DAY, add_readings, device_with_owners
from tests.consumers.factories import new_metering_point
from tests.factories import OrganisationFactory, UserFactory, issuing_body_user, member_of

ADDRESS = {"street": "2 Way", "postcode": "10115", "city": "Berlin"}


@pytest.fixture
def service_world():
    """Everything of the consumers app made through its services, as users would."""
    area = GridAreaFactory()
    person = UserFactory()
    household = services.household_register(actor=person, name="Sam", country="DE", **ADDRESS)
    site = services.site_register(
        actor=person, name="Home", metering_point_id=new_metering_point(),
        grid_area_id=area.pk, **ADDRESS,
    )  # fmt: skip
    services.site_confirm(actor=issuing_body_user(), site_id=site.pk)
    rejected = services.site_register(
        actor=person, name="Cabin", metering_point_id=new_metering_point(),
        grid_area_id=area.pk, **ADDRESS,
    )  # fmt: skip
    services.site_reject(actor=issuing_body_user(), site_id=rejected.pk, reason="not yours")
    plant, _accounts = device_with_owners(grid_area=area)
    operator_org = plant.organisation
    operator = member_of(operator_org)
    home_device, _ = device_with_owners(producer=household.organisation, grid_area=area)
    meter = MeterFactory(device=home_device, kind="consumption")
    link = services.site_meter_link(actor=person, site_id=site.pk, meter_id=meter.pk, role="import")
    supplier = OrganisationFactory(is_producer=False, is_trader=True)
    later = timezone.now() + dt.timedelta(days=30)
    supply = services.consent_grant(
        actor=person, site_id=site.pk, grantee_id=supplier.pk, purpose="supply",
        site_meter_ids=[link.pk], resolution="daily", valid_to=later,
    )  # fmt: skip
    services.consent_revoke(actor=person, consent_id=supply.pk)
    services.consent_grant(
        actor=person, site_id=site.pk, grantee_id=operator_org.pk, purpose="community",
        site_meter_ids=[link.pk], resolution="hourly", valid_to=later,
    )  # fmt: skip
    community = services.community_create(
        actor=operator, organisation_id=operator_org.pk, name="Block 7", grid_area_id=area.pk,
        key_kind="dynamic", internal_price_minor_per_kwh=18,
    )  # fmt: skip
    account = household.organisation.accounts.order_by("pk").first()
    joined = services.community_member_join(
        actor=person, community_id=community.pk, organisation_id=household.organisation_id,
        consumption_meter_id=meter.pk, account_id=account.pk,
        joined_at=DAY, site_id=site.pk,
    )  # fmt: skip
    services.community_device_add(actor=operator, community_id=community.pk, device_id=plant.pk)
    add_readings(plant, start=DAY, hours=2, wh=lambda i: 900)
    add_readings(home_device, start=DAY, hours=2, wh=lambda i: 400 + 300 * i, meter=meter)
    certificate_services.certificate_issue(
        actor="system:test", device_id=plant.pk, period_start=DAY,
        period_end=DAY + dt.timedelta(hours=2),
    )  # fmt: skip
    services.community_certificates_distribute(
        actor=operator, community_id=community.pk, start=DAY, end=DAY + dt.timedelta(hours=2)
    )
    services.community_key_set(
        actor=operator, community_id=community.pk, key_kind="static", shares={joined.pk: "1"}
    )
    services.community_member_leave(
        actor=person, member_id=joined.pk, left_at=DAY + dt.timedelta(days=2)
    )
    return site, supply, joined, community


@pytest.mark.django_db
def test_the_ledger_alone_rebuilds_the_consumers_tables(service_world):
    # when
    report = replay_consumers()

    # then
    assert report.ok, report.problems
    assert report.tables["site"] == 2 and report.tables["consent"] == 2
    assert report.tables["community member"] == 1
    assert report.tables["community distribution"] == 2
    assert replay_ledger().ok  # the certificates followed the distribution's units
    out = StringIO()
    call_command("replay_ledger", stdout=out)
    assert "consumers events" in out.getvalue()


@pytest.mark.django_db
def test_rows_changed_behind_the_services_back_are_found(service_world):
    # given
    site, supply, joined, community = service_world
    Site.objects.filter(pk=site.pk).update(status="pending")
    Consent.objects.filter(pk=supply.pk).update(revoked_at=None)  # a revocation undone
    CommunityMember.objects.filter(pk=joined.pk).update(share_numerator=2, share_denominator=3)
    distribution = CommunityDistribution.objects.filter(community=community).first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE consumers_communitydistribution SET member_wh = %s WHERE id = %s",
            ['{"999": 1}', distribution.pk],
        )

    # when
    report = replay_consumers()

    # then
    assert not report.ok
    named = "\n".join(report.problems)
    for text in (
        f"site {site.pk}:",
        f"consent {supply.pk}:",
        f"community member {joined.pk}:",
        f"community distribution {distribution.pk}:",
    ):
        assert text in named
    assert report.problem_count == 4


@pytest.mark.django_db
def test_the_demo_data_replays(tmp_path):
    # given the demos up to the consumers' own
    from accounts import demo as accounts_demo
    from assets import demo as assets_demo
    from certificates import demo as certificates_demo
    from consumers import demo

    out = StringIO()
    accounts_demo.seed(out)
    assets_demo.seed(out, key_path=tmp_path / "demo.key")
    certificates_demo.seed(out)

    # when
    demo.seed(out)

    # then
    report = replay_consumers()
    assert report.ok, report.problems
    assert report.tables["site"] >= 1
