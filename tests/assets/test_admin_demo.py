"""Admin actions run the services; the demo data is idempotent."""

import io

import pytest
from django.test import Client

from accounts import demo as accounts_demo
from accounts.models import Membership
from assets import demo
from assets.models import Device, GridArea, Meter, Reading, ReadingBatch
from assets.readings_io import iter_mapping_rows
from assets.services import readings_submit
from tests.assets.factories import DeviceFactory, hours_ago, interval_row
from tests.factories import OrganisationFactory, UserFactory


@pytest.fixture
def admin_client(db):
    user = UserFactory(username="ib-admin", is_staff=True, is_superuser=True)
    body = OrganisationFactory(legal_name="IB", is_issuing_body=True, is_producer=False)
    Membership.objects.create(user=user, organisation=body, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


def run_action(client, url, action, ids, reason=None):
    data = {"action": action, "_selected_action": [str(i) for i in ids]}
    page = client.post(url, data)
    assert page.status_code == 200 and b"Reason" in page.content
    data.update({"apply": "1", "reason": reason or ""})
    return client.post(url, data, follow=True)


def test_admin_approves_and_rejects_devices(admin_client, producer_org, snapshot):
    submitted = DeviceFactory(organisation=producer_org, status="submitted")
    other = DeviceFactory(organisation=producer_org, status="submitted")
    url = "/admin/assets/device/"
    before = snapshot()
    run_action(admin_client, url, "approve", [submitted.pk], "Documents complete")
    submitted.refresh_from_db()
    assert submitted.status == "approved" and submitted.status_reason == "Documents complete"
    assert snapshot()["ledger_events"] == before["ledger_events"] + 1
    response = run_action(admin_client, url, "reject", [other.pk], "")
    assert b"A reason is required" in response.content
    assert Device.objects.get(pk=other.pk).status == "submitted"
    run_action(admin_client, url, "reject", [other.pk], "Wrong grid area")
    assert Device.objects.get(pk=other.pk).status == "rejected"
    assert admin_client.get(f"/admin/assets/device/{other.pk}/change/").status_code == 200


def test_admin_reviews_held_batches(admin_client, producer, meter, key):
    result = readings_submit(
        actor=producer, rows=iter_mapping_rows([interval_row(meter, hours_ago(2), 10**6, key=key)])
    )
    batch = result.batch
    page = admin_client.get(f"/admin/assets/readingbatch/{batch.pk}/change/")
    assert page.status_code == 200 and b"over_capacity" in page.content
    run_action(admin_client, "/admin/assets/readingbatch/", "accept", [batch.pk], "Verified")
    assert ReadingBatch.objects.get(pk=batch.pk).status == "accepted"
    assert Reading.objects.filter(batch=batch).count() == 1


def test_admin_grid_area_form_runs_the_service(admin_client, snapshot):
    values = {
        "code": "10Y1001A1001A82X",
        "name": "DE-LU",
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "emission_factor_g_per_kwh": "380",
        "expiry_months": "12",
    }
    before = snapshot()
    response = admin_client.post("/admin/assets/gridarea/add/", values)
    assert response.status_code == 200 and b"check character" in response.content
    assert snapshot() == before
    response = admin_client.post(
        "/admin/assets/gridarea/add/", dict(values, code="10Y1001A1001A82H")
    )
    assert response.status_code == 302, response.content
    area = GridArea.objects.get(code="10Y1001A1001A82H")
    assert snapshot()["ledger_events"] == before["ledger_events"] + 1
    response = admin_client.post(
        f"/admin/assets/gridarea/{area.pk}/change/", dict(values, expiry_months="6")
    )
    assert response.status_code == 302
    assert GridArea.objects.get(pk=area.pk).expiry_months == 6


def test_admin_lists_render(admin_client, meter, key, producer):
    readings_submit(
        actor=producer, rows=iter_mapping_rows([interval_row(meter, hours_ago(2), 10, key=key)])
    )
    for url in ("device", "meter", "reading", "readingbatch", "gridarea"):
        assert admin_client.get(f"/admin/assets/{url}/").status_code == 200, url


def test_demo_seed_is_idempotent(db, tmp_path):
    out = io.StringIO()
    accounts_demo.seed(out)
    key_path = tmp_path / "demo.key"
    demo.seed(out, key_path=key_path)
    pv = Device.objects.get(name=demo.PV_NAME)
    assert pv.status == "active" and pv.owners.count() == 2
    assert sum(o.share for o in pv.owners.all()) == 1
    meter = Meter.objects.get(serial=demo.PV_METER)
    assert meter.readings.count() >= 72 and not meter.readings.filter(is_signed=False).exists()
    assert key_path.is_file() and oct(key_path.stat().st_mode)[-3:] == "600"
    assert ReadingBatch.objects.filter(status="held").count() == 1
    assert GridArea.objects.get(code="10Y1001A1001A82H").time_zone == "Europe/Berlin"
    counts = (Device.objects.count(), Reading.objects.count(), ReadingBatch.objects.count())
    demo.seed(out, key_path=key_path)
    assert (Device.objects.count(), Reading.objects.count(), ReadingBatch.objects.count()) == counts
    assert "exist already" in out.getvalue()
