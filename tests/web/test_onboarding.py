"""The issuing body's CSV onboarding of devices and meters: dry run, all or nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assets.models import Device, Meter
from tests.registry.support import events_since, last_event_id

HEADER = (
    "organisation_id,account_number,name,grid_area,technology_code,energy_source_code,"
    "capacity_kw,commissioning_date,latitude,longitude,meter_serial\n"
)


def _row(world, name: str, serial: str, **changes) -> str:
    device = world.device
    cells = {
        "organisation_id": device.organisation_id,
        "account_number": world.producer_account.number,
        "name": name,
        "grid_area": device.grid_area.code,
        "technology_code": "T010101",
        "energy_source_code": "F01040100",
        "capacity_kw": "250.5",
        "commissioning_date": "2024-03-01",
        "latitude": "52.520008",
        "longitude": "13.404954",
        "meter_serial": serial,
        **changes,
    }
    return ",".join(str(v) for v in cells.values()) + "\n"


def _upload(client, text: str, *, dry_run: bool):
    data = {"file": SimpleUploadedFile("devices.csv", text.encode(), "text/csv")}
    if dry_run:
        data["dry_run"] = "on"
    return client.post(reverse("web:issuing-onboarding"), data)


@pytest.mark.django_db
def test_a_dry_run_lists_every_rows_error_and_writes_nothing(login, world):
    # given: a good row, a bad capacity and date, a meter serial used twice, an unknown account
    client = login(world, "issuing_body")
    text = (
        HEADER
        + _row(world, "Field A", "CSV-A")
        + _row(world, "Field B", "CSV-B", capacity_kw="lots", commissioning_date="01.03.2024")
        + _row(world, "Field C", "CSV-A")
        + _row(world, "Field D", "CSV-D", account_number="GP-99999-T999")
        + _row(world, "Field E", "CSV-E", organisation_id=10**30, capacity_kw="1e999999")
        # fromisoformat's other forms, and a year outside 1000-8999
        + _row(world, "Field F", "CSV-F", commissioning_date="20240301")
        + _row(world, "Field G", "CSV-G", commissioning_date="2024-W01-1")
        + _row(world, "Field H", "CSV-H", commissioning_date="0001-01-01")
    )
    devices, meters, before = Device.objects.count(), Meter.objects.count(), last_event_id()
    # when
    response = _upload(client, text, dry_run=True)
    # then
    assert response.status_code == 200
    rows = {r.line: r for r in response.context["outcome"].rows}
    assert rows[2].code == ""
    assert rows[3].code == "invalid"
    assert set(rows[3].fields) == {"capacity_kw", "commissioning_date"}
    assert rows[4].code == "meter_exists"
    assert rows[5].code == "invalid" and "account_number" in rows[5].fields
    assert set(rows[6].fields) == {"organisation_id", "capacity_kw"}
    assert [set(rows[line].fields) for line in (7, 8, 9)] == [{"commissioning_date"}] * 3
    body = response.content.decode()
    assert "would be registered" in body and "meter_exists" in body
    assert (Device.objects.count(), Meter.objects.count()) == (devices, meters)
    assert events_since(before) == []


@pytest.mark.django_db
def test_a_clean_file_registers_every_row_with_its_ledger_events(login, world):
    # given
    client = login(world, "issuing_body")
    text = HEADER + _row(world, "Field A", "CSV-A") + _row(world, "Field B", "CSV-B")
    before = last_event_id()
    # when
    response = _upload(client, text, dry_run=False)
    # then
    assert response.status_code == 200
    made = Device.objects.filter(name__in=["Field A", "Field B"]).order_by("name")
    assert [(d.status, d.capacity_w, d.organisation_id) for d in made] == [
        (Device.Status.DRAFT, 250_500, world.device.organisation_id)
    ] * 2
    assert sorted(Meter.objects.filter(device__in=made).values_list("serial", flat=True)) == [
        "CSV-A",
        "CSV-B",
    ]
    events = events_since(before)
    assert [e["type"] for e in events] == ["device.registered", "meter.registered"] * 2
    assert "device " in response.content.decode()


@pytest.mark.django_db
def test_one_refused_row_registers_nothing(login, world):
    # given
    client = login(world, "issuing_body")
    text = (
        HEADER + _row(world, "Field A", "CSV-A") + _row(world, "Field B", "CSV-B", grid_area="XX")
    )
    before = last_event_id()
    # when
    response = _upload(client, text, dry_run=False)
    # then
    assert response.status_code == 200
    assert [r["line"] for r in response.context["refused"]] == [3]
    assert "Nothing was registered" in response.content.decode()
    assert not Device.objects.filter(name__in=["Field A", "Field B"]).exists()
    assert events_since(before) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,colour\nA,red\n", "Missing: organisation_id"),
        (HEADER, "The file has no rows."),
    ],
    ids=["wrong columns", "no rows"],
)
def test_a_file_of_the_wrong_shape_is_refused_whole(login, world, text, message):
    client = login(world, "issuing_body")
    response = _upload(client, text, dry_run=True)
    assert response.status_code == 200
    assert message in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["producer", "buyer", "auditor"])
def test_only_the_issuing_body_onboards(login, world, role):
    client = login(world, role)
    assert client.get(reverse("web:issuing-onboarding")).status_code == 403
    response = _upload(client, HEADER + _row(world, "Field A", "CSV-A"), dry_run=False)
    assert response.status_code == 403
    assert not Device.objects.filter(name="Field A").exists()


@pytest.mark.django_db
def test_the_onboarding_page_speaks_russian(login, world):
    client = login(world, "issuing_body")
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    body = client.get(reverse("web:issuing-onboarding")).content.decode()
    assert "Регистрация устройств из CSV" in body
    assert "Пробный прогон" in body


@pytest.mark.django_db
def test_the_api_dry_runs_and_refuses_a_file_with_a_bad_row_listing_it(world):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(world.users["issuing_body"])
    text = HEADER + _row(world, "Field A", "CSV-A") + _row(world, "Field B", "CSV-A")
    before = last_event_id()
    # a dry run answers per row
    dry = client.post("/api/v1/devices/onboard/", {"csv": text}, format="json")
    assert dry.status_code == 200
    assert [(r["line"], r["code"], r["device"]) for r in dry.json()["rows"]] == [
        (2, "", None),
        (3, "meter_exists", None),
    ]
    # the real run refuses the whole file
    real = client.post("/api/v1/devices/onboard/", {"csv": text, "dry_run": False}, format="json")
    assert real.status_code == 400
    assert real.json()["code"] == "onboarding_rejected"
    assert [r["line"] for r in real.json()["extra"]["rows"]] == [3]
    assert events_since(before) == []
    # the corrected file goes in, with ids
    good = HEADER + _row(world, "Field A", "CSV-A") + _row(world, "Field B", "CSV-B")
    done = client.post("/api/v1/devices/onboard/", {"csv": good, "dry_run": False}, format="json")
    assert done.status_code == 200
    assert all(r["device"] and r["meter"] for r in done.json()["rows"])
    assert len(events_since(before)) == 4
