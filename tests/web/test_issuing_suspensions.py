"""The issuing body's organisations-and-devices page: suspend an approved organisation or
device with a reason (and reinstate it) through the owning app's service."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Organisation
from assets.models import Device
from tests.certificates.factories import DeviceFactory
from tests.factories import OrganisationFactory
from tests.registry.support import events_since, last_event_id


def _decide(kind, pk, decision):
    return reverse("web:issuing-decide", args=[kind, pk, decision])


@pytest.mark.django_db
def test_the_page_lists_approved_organisations_and_devices_with_suspend(login, world):
    # given
    producer = world.device.organisation
    pending = Organisation.objects.get(legal_name="Newcomer Solar")
    submitted = Device.objects.get(name="Barn roof")
    # when
    response = login(world, "issuing_body").get(reverse("web:issuing-registry"))
    # then
    assert response.status_code == 200
    assert producer in response.context["organisations"]
    assert pending not in response.context["organisations"]
    assert world.device in response.context["devices"]
    assert submitted not in response.context["devices"]
    body = response.content.decode()
    assert _decide("organisation", producer.pk, "suspend") in body
    assert _decide("device", world.device.pk, "suspend") in body
    assert f"Suspend {world.device.name}?" in body  # the confirmation htmx asks
    assert (
        reverse("web:issuing-registry")
        in login(world, "issuing_body").get(reverse("web:issuing")).content.decode()
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["producer", "buyer", "auditor"])
def test_the_page_and_its_buttons_are_for_the_issuing_body(login, world, role):
    client = login(world, role)
    before = last_event_id()
    assert client.get(reverse("web:issuing-registry")).status_code == 403
    response = client.post(_decide("device", world.device.pk, "suspend"), {"reason": "x"})
    assert response.status_code == 403
    world.device.refresh_from_db()
    assert world.device.status != Device.Status.SUSPENDED
    assert events_since(before) == []


@pytest.mark.django_db
def test_suspending_an_organisation_and_a_device_records_the_reason(login, world):
    # given
    producer = world.device.organisation
    client = login(world, "issuing_body")
    before = last_event_id()
    # when
    for kind, pk in (("device", world.device.pk), ("organisation", producer.pk)):
        response = client.post(_decide(kind, pk, "suspend"), {"reason": "Meter tampering"})
        assert response.status_code == 302
        assert response.url == reverse("web:issuing-registry")
    # then: one event each, through accounts' and assets' services
    assert [e["type"] for e in events_since(before)] == [
        "device.suspended",
        "organisation.suspended",
    ]
    producer.refresh_from_db()
    world.device.refresh_from_db()
    assert (producer.status, producer.status_reason) == ("suspended", "Meter tampering")
    assert (world.device.status, world.device.status_reason) == ("suspended", "Meter tampering")
    page = client.get(reverse("web:issuing-registry")).content.decode()
    assert _decide("device", world.device.pk, "reinstate") in page
    assert _decide("organisation", producer.pk, "reinstate") in page
    assert "suspended: Meter tampering" in page


@pytest.mark.django_db
def test_a_suspended_device_is_reinstated_with_a_reason(login, world):
    # given
    client = login(world, "issuing_body")
    client.post(_decide("device", world.device.pk, "suspend"), {"reason": "Check"})
    before = last_event_id()
    # when
    response = client.post(
        _decide("device", world.device.pk, "reinstate"), {"reason": "Checked"}, follow=True
    )
    # then
    world.device.refresh_from_db()
    assert world.device.status == Device.Status.ACTIVE
    assert [e["type"] for e in events_since(before)] == ["device.reinstated"]
    assert "Device reinstated." in response.content.decode()


@pytest.mark.django_db
def test_a_suspension_without_a_reason_is_refused_and_changes_nothing(login, world):
    # given
    client = login(world, "issuing_body")
    status = world.device.status
    before = last_event_id()
    # when
    response = client.post(
        _decide("device", world.device.pk, "suspend"), {"reason": " "}, follow=True
    )
    # then
    world.device.refresh_from_db()
    assert world.device.status == status
    assert "(invalid)" in response.content.decode()
    assert events_since(before) == []


@pytest.mark.django_db
def test_suspending_a_pending_device_is_refused_with_its_code(login, world):
    submitted = Device.objects.get(name="Barn roof")
    before = last_event_id()
    response = login(world, "issuing_body").post(
        _decide("device", submitted.pk, "suspend"), {"reason": "x"}, follow=True
    )
    submitted.refresh_from_db()
    assert submitted.status == Device.Status.SUBMITTED
    assert "(device_status_conflict)" in response.content.decode()
    assert events_since(before) == []


@pytest.mark.django_db
def test_the_page_does_a_fixed_number_of_queries_and_searches_by_name(login, world):
    # given
    client = login(world, "issuing_body")
    url = reverse("web:issuing-registry")
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    for i in range(5):
        org = OrganisationFactory(legal_name=f"Wind Coop {i}")
        DeviceFactory(organisation=org, name=f"Turbine {i}", status=Device.Status.APPROVED)
    OrganisationFactory(legal_name="Later Solar", status=Organisation.Status.SUSPENDED)
    # when
    with CaptureQueriesContext(connection) as large:
        response = client.get(url)
    # then
    assert len(response.context["organisations"]) >= 7
    assert len(large.captured_queries) == len(small.captured_queries)
    found = client.get(url, {"q": "turbine 3"}).context
    assert [d.name for d in found["devices"]] == ["Turbine 3"]
    assert found["organisations"] == []


@pytest.mark.django_db
def test_the_page_reads_in_russian(login, world):
    client = login(world, "issuing_body")
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    body = client.get(reverse("web:issuing-registry")).content.decode()
    for english in ("Organisations and devices", "Suspend ", "Reason for suspending", "approved"):
        assert english not in body.split("<main", 1)[1]
