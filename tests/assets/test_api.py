"""API visibility, permissions and filters."""

import datetime as dt

import pytest

from accounts.models import Organisation
from assets.models import DeviceOwner
from assets.readings_io import iter_mapping_rows
from assets.services import readings_submit
from tests.assets.factories import (
    DeviceFactory,
    hours_ago,
    interval_row,
    public_key_b64,
    signing_key,
)
from tests.conftest import client_for
from tests.factories import AccountFactory, OrganisationFactory, member_of


@pytest.fixture
def devices(producer_org, grid_area):
    other_org = OrganisationFactory(legal_name="Other Producer")
    return {
        "own_draft": DeviceFactory(organisation=producer_org, grid_area=grid_area, status="draft"),
        "own_active": DeviceFactory(organisation=producer_org, grid_area=grid_area),
        "other_active": DeviceFactory(
            organisation=other_org, technology_code="T020001", energy_source_code="F01050100"
        ),
        "other_draft": DeviceFactory(organisation=other_org, status="submitted"),
        "other_approved": DeviceFactory(organisation=other_org, status="approved"),
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


def test_anonymous_sees_public_devices_and_grid_areas_only(api_client, devices, grid_area):
    public = {devices["own_active"].pk, devices["other_active"].pk, devices["other_approved"].pk}
    assert ids(api_client.get("/api/v1/devices/")) == public
    body = api_client.get(f"/api/v1/devices/{devices['own_active'].pk}/").json()
    assert body["owners"] is None and body["location_precision"] == "rounded"
    assert body["latitude"] == "52.52" and body["technology_label"].startswith("Solar")
    assert api_client.get(f"/api/v1/devices/{devices['own_draft'].pk}/").status_code == 404
    assert grid_area.pk in ids(api_client.get("/api/v1/grid-areas/"))
    for url in ("/api/v1/meters/", "/api/v1/readings/", "/api/v1/reading-batches/"):
        assert api_client.get(url).status_code == 401
    assert api_client.get("/api/v1/eecs-codes/").status_code == 200


def test_producer_sees_own_devices_fully(producer, devices):
    client = client_for(producer)
    visible = ids(client.get("/api/v1/devices/"))
    assert devices["own_draft"].pk in visible and devices["other_draft"].pk not in visible
    body = client.get(f"/api/v1/devices/{devices['own_active'].pk}/").json()
    assert body["location_precision"] == "exact" and body["latitude"] == "52.520008"
    assert body["owners"][0]["share"] == "1/1"
    other = client.get(f"/api/v1/devices/{devices['other_active'].pk}/").json()
    assert other["owners"] is None


def test_co_owner_sees_the_device_fully(devices):
    resident_org = OrganisationFactory(legal_name="Resident")
    resident = member_of(resident_org)
    device = devices["other_draft"]
    DeviceOwner.objects.filter(device=device).update(share_numerator=1, share_denominator=2)
    DeviceOwner.objects.create(
        device=device,
        organisation=resident_org,
        account=AccountFactory(organisation=resident_org),
        share_numerator=1,
        share_denominator=2,
    )
    body = client_for(resident).get(f"/api/v1/devices/{device.pk}/").json()
    assert len(body["owners"]) == 2
    assert Organisation.objects.filter(pk=resident_org.pk).exists()


def test_auditor_and_issuing_body_see_everything(auditor, issuer, devices):
    for user in (auditor, issuer):
        assert ids(client_for(user).get("/api/v1/devices/?page_size=100")) == {
            d.pk for d in devices.values()
        }


def test_auditor_changes_nothing(auditor, devices, snapshot):
    before = snapshot()
    client = client_for(auditor)
    device = devices["other_draft"]
    assert (
        client.post(f"/api/v1/devices/{device.pk}/approve/", {}, format="json").status_code == 403
    )
    assert client.patch(
        f"/api/v1/devices/{device.pk}/", {"name": "x"}, format="json"
    ).status_code in (
        403,
        409,
    )
    assert snapshot() == before


def test_producer_cannot_act_on_someone_elses_device(producer, devices, snapshot):
    before = snapshot()
    client = client_for(producer)
    target = devices["other_active"]
    response = client.post(
        f"/api/v1/devices/{target.pk}/decommission/", {"reason": "mine now"}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "not_device_operator"
    response = client.post(
        "/api/v1/meters/", {"device": target.pk, "serial": "HIJACK-1"}, format="json"
    )
    assert response.status_code == 403
    hidden = devices["other_draft"]
    assert client.post(f"/api/v1/devices/{hidden.pk}/submit/", {}, format="json").status_code == 404
    assert snapshot() == before


def test_device_filters(issuer, devices, grid_area):
    client = client_for(issuer)
    assert ids(client.get(f"/api/v1/devices/?grid_area={grid_area.pk}")) == {
        devices["own_draft"].pk,
        devices["own_active"].pk,
    }
    assert ids(client.get(f"/api/v1/devices/?grid_area_code={grid_area.code}")) == {
        devices["own_draft"].pk,
        devices["own_active"].pk,
    }
    assert ids(client.get("/api/v1/devices/?technology=T02")) == {devices["other_active"].pk}
    assert ids(client.get("/api/v1/devices/?technology_code=T020001")) == {
        devices["other_active"].pk
    }
    assert ids(client.get("/api/v1/devices/?status=submitted")) == {devices["other_draft"].pk}
    owner = devices["own_active"].organisation_id
    assert ids(client.get(f"/api/v1/devices/?organisation={owner}")) == {
        devices["own_draft"].pk,
        devices["own_active"].pk,
    }
    assert ids(client.get(f"/api/v1/devices/?owner={owner}")) == {
        devices["own_draft"].pk,
        devices["own_active"].pk,
    }


def test_reading_filters_and_scoping(producer, auditor, meter, key, producer_org):
    rows = [interval_row(meter, hours_ago(h), h, key=key) for h in range(10, 0, -1)]
    readings_submit(actor=producer, rows=iter_mapping_rows(rows))
    client = client_for(producer)
    period = f"period_start={hours_ago(8).isoformat()}&period_end={hours_ago(5).isoformat()}"
    response = client.get(
        f"/api/v1/readings/?device={meter.device_id}&{period}".replace("+", "%2B")
    )
    starts = [item["start"] for item in response.json()["results"]]
    assert len(starts) == 3, response.json()
    assert client.get(f"/api/v1/readings/?meter={meter.serial}").json()["count"] == 10
    outsider = member_of(OrganisationFactory())
    assert client_for(outsider).get("/api/v1/readings/").json()["count"] == 0
    assert client_for(auditor).get("/api/v1/readings/").json()["count"] == 10
    batch = client_for(auditor).get("/api/v1/reading-batches/").json()["results"][0]
    assert batch["size"] == 10 and batch["ledger_subject"] == f"reading_batch:{batch['id']}"
    assert client_for(outsider).get("/api/v1/reading-batches/").json()["count"] == 0
    assert client_for(outsider).get(f"/api/v1/meters/{meter.serial}/").status_code == 404


def test_grid_area_api(issuer, producer):
    body = {
        "code": "10YDE-VE-------2",
        "name": "50Hertz",
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "emission_factor_g_per_kwh": "412.5",
        "expiry_months": 12,
    }
    assert client_for(producer).post("/api/v1/grid-areas/", body, format="json").status_code == 403
    response = client_for(issuer).post("/api/v1/grid-areas/", body, format="json")
    assert response.status_code == 201, response.content
    area_id = response.json()["id"]
    bad = dict(body, code="10YDE-VE-------3")
    response = client_for(issuer).post("/api/v1/grid-areas/", bad, format="json")
    assert response.status_code == 400 and "code" in response.json()["extra"]["fields"]
    response = client_for(issuer).patch(
        f"/api/v1/grid-areas/{area_id}/", {"expiry_months": 6}, format="json"
    )
    assert response.status_code == 200 and response.json()["expiry_months"] == 6
    response = client_for(issuer).patch(
        f"/api/v1/grid-areas/{area_id}/", {"code": "X"}, format="json"
    )
    assert response.status_code == 400


def test_meter_api_key_rotation(producer, meter):
    client = client_for(producer)
    new = public_key_b64(signing_key(42))
    response = client.post(
        f"/api/v1/meters/{meter.serial}/keys/",
        {"public_key": new, "valid_from": dt.datetime.now(dt.UTC).isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.content
    keys = client.get(f"/api/v1/meters/{meter.serial}/keys/").json()
    assert [k["public_key"] for k in keys][-1] == new and keys[0]["valid_to"] is not None
    assert client.get(f"/api/v1/meters/{meter.serial}/").json()["public_key"] == new


def test_device_registration_honours_idempotency_keys(producer, producer_org, grid_area):
    account = AccountFactory(organisation=producer_org)
    body = {
        "organisation": producer_org.pk,
        "name": "Retry-safe PV",
        "grid_area": grid_area.pk,
        "technology_code": "T010101",
        "energy_source_code": "F01040100",
        "capacity_w": 5000,
        "commissioning_date": "2022-05-01",
        "latitude": "48.1",
        "longitude": "11.5",
        "owners": [{"organisation": producer_org.pk, "account": account.pk, "share": "1"}],
    }
    client = client_for(producer)
    first = client.post("/api/v1/devices/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/devices/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    assert DeviceOwner.objects.filter(device__name="Retry-safe PV").count() == 1
