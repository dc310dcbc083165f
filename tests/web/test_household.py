"""The household's pages: dashboard (sites, energy chart, matching score, community share,
charging receipts), consents granted and revoked through the consumers services, and the log
of who read the household's data. Fixed query counts; English and Russian."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from consumers.models import Consent, DataAccess, SiteMeter
from tests.registry.support import events_since, last_event_id
from tests.web.world import build_web_world

pytestmark = pytest.mark.django_db


def _grant_form(world, **changes) -> dict:
    meter = world.site.meters.get(role="import")
    form = {
        "site": world.site.pk,
        "grantee": world.supplier.pk,
        "meters": [meter.pk],
        "purpose": "advice",
        "resolution": "daily",
        "valid_until": (timezone.now() + dt.timedelta(days=90)).date().isoformat(),
    }
    form.update(changes)
    return form


def test_a_household_reaches_its_page_after_login(login, world):
    # given
    client = login(world, "household")
    # when
    response = client.get(reverse("web:dashboard"), follow=True)
    # then
    assert response.redirect_chain[-1][0] == reverse("web:household")
    body = response.content.decode()
    assert world.site.metering_point_id in body
    assert "Import (consumption): HOME-IMPORT" in body
    assert "Production behind the meter: HOME-PV" in body
    assert 'href="/household/consents/"' in body


@pytest.mark.parametrize("role", ["buyer", "producer", "auditor", "supplier"])
def test_the_household_pages_are_the_households_only(login, world, role):
    client = login(world, role)
    assert client.get(reverse("web:household")).status_code == 403
    assert client.get(reverse("web:household-consents")).status_code == 403
    revoke = reverse("web:consent-revoke", args=[world.consent.pk])
    assert client.post(revoke).status_code == 403
    world.consent.refresh_from_db()
    assert world.consent.revoked_at is None


def test_the_dashboard_shows_energy_matching_and_the_community_share(login, world):
    # given: 6 hours of 400.. Wh consumption, 200.. Wh production, 150 Wh of certificates
    client = login(world, "household")
    # when
    response = client.get(reverse("web:household"), {"step": "hour"})
    # then: the chart sums each role per hour
    chart = response.context["chart"]
    labels = [d["label"] for d in chart["datasets"]]
    assert labels == ["Consumption", "Production"]
    assert chart["totals_wh"]["consumption"] == sum(400 + 10 * i for i in range(6))
    assert chart["totals_wh"]["production"] == sum(200 + 5 * i for i in range(6))
    assert len(chart["labels"]) == 7 * 24
    assert 'id="energy-data"' in response.content.decode()
    # the hourly matching score of the site (consumers' report): 150 Wh matched in one hour
    (matching,) = response.context["matching"]
    assert matching["total"]["matched_wh"] == 150
    assert matching["total"]["consumption_wh"] == chart["totals_wh"]["consumption"]
    assert matching["percent"] == pytest.approx(
        150 / chart["totals_wh"]["consumption"] * 100, abs=0.01
    )
    # the community membership with the member's own allocation row
    (community,) = response.context["communities"]
    assert community["community"].name == "Lindenhof energy community"
    assert community["mine"]["consumption_wh"] == chart["totals_wh"]["consumption"]
    assert "Lindenhof energy community" in response.content.decode()


def test_the_energy_chart_comes_alone_for_htmx_for_each_step(login, world):
    client = login(world, "household")
    for step, buckets in (("hour", 7 * 24), ("day", 32)):
        response = client.get(reverse("web:household-energy"), {"step": step})
        assert response.status_code == 200
        assert len(response.context["chart"]["labels"]) in (buckets - 1, buckets)
        assert response.content.decode().startswith('<div id="energy"')


def test_charging_receipts_link_their_statements(login, world):
    # given: the household person also drives for a fleet whose session was matched
    from charging import services as charging_services
    from tests.charging.factories import DAY, charge, charging_world, renewable_hours
    from tests.factories import MembershipFactory

    charging = charging_world()
    account = renewable_hours(charging, hours={10: 5000})
    session = charge(
        charging,
        start=DAY + dt.timedelta(hours=10, minutes=10),
        readings=[(0, 1000), (40, 4000)],
    )
    receipt = charging_services.session_match(
        actor=charging.operator, session_id=session.pk, account_id=account.pk
    )
    MembershipFactory(
        user=world.users["household"], organisation=charging.driver, role=Membership.Role.VIEWER
    )
    client = login(world, "household")
    # when
    response = client.get(reverse("web:household"))
    # then
    body = response.content.decode()
    retirement = receipt.hours.get().retirement
    assert [r.pk for r in response.context["receipts"]] == [receipt.pk]
    assert reverse("certificates:statement", args=[retirement.public_id]) in body


def test_the_consents_page_lists_grants_and_every_read_granted_or_refused(login, world):
    # given: the supplier read once under the grant and was refused once (another meter)
    client = login(world, "household")
    # when
    response = client.get(reverse("web:household-consents"))
    # then
    body = response.content.decode()
    assert [c.pk for c in response.context["consents"]] == [world.consent.pk]
    assert f"Revoke consent {world.consent.pk}" in body
    outcomes = sorted(a.outcome for a in response.context["accesses"])
    assert outcomes == ["granted", "refused"]
    assert "Stadtwerke Sonnenstadt" in body
    assert "no grant covers it" in body


def test_a_household_grants_a_consent_through_the_form(login, world):
    # given
    client = login(world, "household")
    before = last_event_id()
    # when
    response = client.post(reverse("web:household-consents"), _grant_form(world), follow=True)
    # then: one grant, one ledger event, a message
    consent = Consent.objects.exclude(pk=world.consent.pk).get()
    assert (consent.purpose, consent.resolution, consent.grantee) == (
        "advice",
        "daily",
        world.supplier,
    )
    assert consent.valid_to.time() == dt.time(0, 0)
    assert [e["type"] for e in events_since(before)] == ["consent.granted"]
    assert f"Consent {consent.pk} granted to Stadtwerke Sonnenstadt." in response.content.decode()


def test_a_refused_grant_says_why_and_changes_nothing(login, world):
    # given: a grant for the same organisation and purpose overlaps the one in force
    client = login(world, "household")
    before = last_event_id()
    # when
    response = client.post(reverse("web:household-consents"), _grant_form(world, purpose="supply"))
    # then
    assert response.status_code == 200
    assert "consent_overlaps" in response.content.decode()
    assert Consent.objects.count() == 1
    assert events_since(before) == []


def test_a_meter_of_another_site_is_refused_on_the_form(login, world):
    from tests.consumers.factories import SiteFactory, site_meter

    other = site_meter(SiteFactory(household=world.household, name="Garden house"))
    client = login(world, "household")
    response = client.post(reverse("web:household-consents"), _grant_form(world, meters=[other.pk]))
    assert "Name one or more meters of this site." in response.content.decode()
    assert Consent.objects.count() == 1


def test_a_household_revokes_a_consent_with_htmx_and_reads_are_refused_after(login, world):
    # given
    from consumers.errors import ConsentRequired
    from consumers.selectors import site_readings_read

    client = login(world, "household")
    before = last_event_id()
    # when
    response = client.post(
        reverse("web:consent-revoke", args=[world.consent.pk]), HTTP_HX_REQUEST="true", follow=True
    )
    # then
    world.consent.refresh_from_db()
    assert world.consent.revoked_at is not None
    assert [e["type"] for e in events_since(before)] == ["consent.revoked"]
    assert "revoked: reads from now on are refused" in response.content.decode()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    with pytest.raises(ConsentRequired):
        site_readings_read(
            user=world.users["supplier"],
            site_id=world.site.pk,
            start=now - dt.timedelta(hours=3),
            end=now,
            resolution="hourly",
        )
    assert DataAccess.objects.filter(reason="consent_revoked").count() == 1
    # and revoking again is refused with the service's code, changing nothing
    again = client.post(reverse("web:consent-revoke", args=[world.consent.pk]), follow=True)
    assert "consent_revoked" in again.content.decode()


def test_another_households_consent_cannot_be_revoked(client, world):
    from tests.consumers.factories import HouseholdFactory

    stranger = HouseholdFactory()
    client.force_login(stranger.person)
    response = client.post(reverse("web:consent-revoke", args=[world.consent.pk]))
    assert response.status_code == 404
    world.consent.refresh_from_db()
    assert world.consent.revoked_at is None


def _grow(world, *, sites: int, communities: int, grants: int, reads: int) -> None:
    """More of everything the household pages list or compute: sites (each with a meter),
    community memberships, grants (the last one revoked) and reads by the supplier."""
    from consumers.selectors import site_readings_read
    from consumers.services import consent_grant, consent_revoke
    from tests.consumers.factories import CommunityFactory, SiteFactory, member, site_meter

    person = world.users["household"]
    area = world.site.grid_area
    for i in range(sites):
        link = site_meter(SiteFactory(household=world.household, name=f"Site {i}", grid_area=area))
        if i < communities:
            member(CommunityFactory(grid_area=area), world.household.organisation, link.meter)
    meter = world.site.meters.get(role="import")
    purposes = ["advice", "flexibility", "audit", "other"]
    for purpose in purposes[:grants]:
        grant = consent_grant(
            actor=person,
            site_id=world.site.pk,
            grantee_id=world.supplier.pk,
            purpose=purpose,
            site_meter_ids=[meter.pk],
            resolution="daily",
            valid_to=timezone.now() + dt.timedelta(days=30),
        )
    if grants:
        consent_revoke(actor=person, consent_id=grant.pk)
    for _ in range(reads):
        site_readings_read(
            user=world.users["supplier"],
            site_id=world.site.pk,
            start=timezone.now() - dt.timedelta(days=1),
            end=timezone.now(),
            resolution="daily",
            site_meter_ids=[meter.pk],
        )


def test_the_dashboard_does_the_same_queries_for_one_site_or_five_and_three_communities(
    client, django_assert_num_queries
):
    # given: the household with one confirmed site and one community, measured
    from tests.certificates.factories import add_readings

    world = build_web_world(devices=1, hours=4)
    client.force_login(world.users["household"])
    with CaptureQueriesContext(connection) as one_site:
        response = client.get(reverse("web:household"))
    assert response.status_code == 200
    assert len(response.context["matching"]) == 1
    assert len(response.context["communities"]) == 1
    # when: four more sites, each with an import meter that read 4 hours, two of them in a
    # community of their own (5 sites, 3 communities), and more grants and reads
    _grow(world, sites=4, communities=2, grants=2, reads=2)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=6)
    for link in SiteMeter.objects.filter(
        site__household=world.household, site__name__startswith="Site"
    ):
        add_readings(link.meter.device, meter=link.meter, start=start, hours=4, wh=lambda i: 100)
    # then: the same number of queries, and every site and community reported
    with django_assert_num_queries(len(one_site.captured_queries)):
        response = client.get(reverse("web:household"))
    matching = response.context["matching"]
    assert [row["total"]["consumption_wh"] for row in matching[1:]] == [400] * 4
    communities = response.context["communities"]
    assert len(communities) == 3
    assert all(row["mine"] is not None for row in communities)


def test_the_consents_page_does_a_fixed_number_of_queries_whatever_the_data_size(
    client, django_assert_max_num_queries
):
    # given: a small world, measured; then a larger one with more sites, communities,
    # grants, reads and readings must not need more queries
    small = build_web_world(devices=1, hours=4)
    _grow(small, sites=2, communities=2, grants=1, reads=0)
    client.force_login(small.users["household"])
    with CaptureQueriesContext(connection) as small_run:
        assert client.get(reverse("web:household-consents")).status_code == 200
    budget = len(small_run.captured_queries)
    assert budget > 0
    large = build_web_world(devices=2, hours=30, tag="-large")
    _grow(large, sites=5, communities=5, grants=4, reads=5)
    client.force_login(large.users["household"])
    # when / then
    with django_assert_max_num_queries(budget):
        assert client.get(reverse("web:household-consents")).status_code == 200


def test_the_household_pages_speak_russian(client, world):
    client.force_login(world.users["household"])
    for page, words, english in (
        (
            "web:household",
            ["Мой дом", "Мои объекты", "Отбор (потребление)", "Моя почасовая доля покрытия"],
            ["My sites", "Import (consumption)", "Consumption", "My bill"],
        ),
        (
            "web:household-consents",
            ["Мои согласия", "Кто читал мои данные", "Поставка и расчёты", "отказано"],
            ["Who read my data", "Supply and billing", "refused", "no grant covers it"],
        ),
    ):
        body = client.get(reverse(page), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
        for word in words:
            assert word in body, (page, word)
        for word in english:
            assert word not in body, (page, word)


def test_seed_demo_makes_a_household_login_with_a_site_readings_and_a_read(client, capsys):
    # given: make run's demo data
    from django.core.management import call_command

    from accounts.models import User
    from assets.models import Reading
    from consumers.models import Site

    call_command("seed_demo")
    # when: run again (idempotent), and the logins shown again
    call_command("seed_demo")
    call_command("demo_logins")
    # then
    out = capsys.readouterr().out
    assert "The demo household exists already." in out
    assert "  household / " in out
    person = User.objects.get(username="household")
    site = Site.objects.get(household__person=person)
    assert site.status == Site.Status.CONFIRMED
    assert Reading.objects.filter(meter__site_link__site=site).count() == 3 * 24 * 2
    assert DataAccess.objects.filter(site=site, outcome="granted").count() == 1
    client.force_login(person)
    response = client.get(reverse("web:dashboard"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("web:household")
    assert response.context["chart"]["totals_wh"]["production"] > 0


def test_a_person_without_a_role_reads_how_to_take_part_as_a_household(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    body = client.get(reverse("web:dashboard")).content.decode()
    assert "POST /api/v1/households/me/" in body
