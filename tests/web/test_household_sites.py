"""The household registers a site and adds a meter to it on /household/sites/, through the
consumers services (site_register, site_meter_link): one event each, refusals with the
service's code and nothing written; a fixed number of queries; English and Russian."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assets.models import Meter
from consumers.metering_point import metering_point_with_check
from consumers.models import Site, SiteMeter
from tests.registry.support import events_since, last_event_id
from tests.web.world import build_web_world

pytestmark = pytest.mark.django_db

POINT = metering_point_with_check("87152099999999999")


def _site_form(world, **changes) -> dict:
    return {
        "name": "Garden house",
        "metering_point_id": POINT,
        "grid_area": world.site.grid_area_id,
        "street": "7 Garden Path",
        "postcode": "10117",
        "city": "Berlin",
    } | changes


def _spare_meter(world, serial="GARDEN-1", grid_area=None) -> Meter:
    """A registered meter of the household that serves no site yet."""
    from tests.assets.factories import DeviceFactory, MeterFactory

    device = DeviceFactory(
        organisation=world.household.organisation,
        grid_area=grid_area or world.site.grid_area,
        name="Garden meters",
    )
    return MeterFactory(device=device, kind=Meter.Kind.CONSUMPTION, serial=serial)


def test_a_household_registers_a_site_through_the_form(login, world):
    # given
    client = login(world, "household")
    before = last_event_id()
    # when
    response = client.post(reverse("web:household-sites"), _site_form(world), follow=True)
    # then: a pending site, one event, a message, and the site listed
    site = Site.objects.get(metering_point_id=POINT)
    assert (site.household, site.status, site.name) == (world.household, "pending", "Garden house")
    assert [e["type"] for e in events_since(before)] == ["site.registered"]
    body = response.content.decode()
    assert "Site Garden house registered: it waits for confirmation." in body
    assert POINT in body


def test_a_wrong_check_digit_is_refused_with_its_code_and_changes_nothing(login, world):
    client = login(world, "household")
    before = last_event_id()
    wrong = POINT[:17] + str((int(POINT[17]) + 1) % 10)
    response = client.post(
        reverse("web:household-sites"), _site_form(world, metering_point_id=wrong)
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "(metering_point_invalid)" in body and "The check digit should be" in body
    assert not Site.objects.filter(metering_point_id=wrong).exists()
    assert events_since(before) == []


def test_a_household_adds_a_meter_to_its_site(login, world):
    # given: a registered meter of the household that serves no site
    meter = _spare_meter(world)
    client = login(world, "household")
    page = client.get(reverse("web:household-sites")).content.decode()
    assert "GARDEN-1 · Garden meters" in page
    before = last_event_id()
    # when
    response = client.post(
        reverse("web:household-site-meter"),
        {"site": world.site.pk, "meter": meter.pk, "role": "ev_charger"},
        follow=True,
    )
    # then
    link = SiteMeter.objects.get(meter=meter)
    assert (link.site, link.role) == (world.site, "ev_charger")
    assert [e["type"] for e in events_since(before)] == ["site.meter_linked"]
    assert "Meter GARDEN-1 added to Lindenstraße 5 as EV charger." in response.content.decode()


def test_a_meter_of_another_grid_area_is_refused_and_nothing_changes(login, world):
    from tests.assets.factories import GridAreaFactory

    meter = _spare_meter(world, grid_area=GridAreaFactory())
    client = login(world, "household")
    before = last_event_id()
    response = client.post(
        reverse("web:household-site-meter"),
        {"site": world.site.pk, "meter": meter.pk, "role": "import"},
    )
    body = response.content.decode()
    assert "meter_not_linkable" in body and "another grid area" in body
    assert not SiteMeter.objects.filter(meter=meter).exists()
    assert events_since(before) == []


@pytest.mark.parametrize("role", ["buyer", "producer", "auditor", "supplier"])
def test_the_sites_page_is_the_households_only(login, world, role):
    client = login(world, role)
    assert client.get(reverse("web:household-sites")).status_code == 403
    assert client.post(reverse("web:household-sites"), _site_form(world)).status_code == 403
    assert not Site.objects.filter(metering_point_id=POINT).exists()


def test_the_sites_page_does_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    # given: the household with one site, measured; then four more sites and spare meters
    from tests.consumers.factories import SiteFactory, site_meter

    world = build_web_world(devices=1, hours=2)
    client.force_login(world.users["household"])
    with CaptureQueriesContext(connection) as one_site:
        assert client.get(reverse("web:household-sites")).status_code == 200
    for i in range(4):
        site_meter(SiteFactory(household=world.household, grid_area=world.site.grid_area))
        _spare_meter(world, serial=f"SPARE-{i}")
    # when / then
    with django_assert_max_num_queries(len(one_site.captured_queries)):
        response = client.get(reverse("web:household-sites"))
    assert len(response.context["sites"]) == 5


def test_the_sites_page_speaks_russian(client, world):
    client.force_login(world.users["household"])
    body = client.get(reverse("web:household-sites"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    for word in ["Мои объекты", "Зарегистрировать объект", "Добавить счётчик к объекту"]:
        assert word in body, word
    for word in ["Register a site", "Add a meter to a site", "Street and number"]:
        assert word not in body, word
