"""End to end through the HTTP API: a producer registers a co-owned solar plant and its
signing meter, the issuing body approves it, and the meter's signed hourly readings arrive
as JSON and as CSV."""

import base64
import datetime as dt

import nacl.signing
import pytest
from rest_framework.test import APIClient

from assets.canonical import reading_bytes
from ledger.merkle import leaf_hash, verify_inclusion
from tests.assets.factories import hours_ago
from tests.conftest import client_for
from tests.factories import issuing_body_user

pytestmark = pytest.mark.django_db


def token_client(username: str, password: str = "a-Long-passphrase-9") -> APIClient:
    anonymous = APIClient()
    response = anonymous.post(
        "/api/v1/auth/register/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 201, response.content
    response = anonymous.post(
        "/api/v1/auth/tokens/",
        {"name": "meter gateway", "username": username, "password": password},
        format="json",
    )
    assert response.status_code == 201, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    return client


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def approved_organisation(client, issuer, name: str, registration: str) -> tuple[int, int]:
    organisation = ok(
        client.post(
            "/api/v1/organisations/",
            {"legal_name": name, "country": "DE", "registration_id": registration,
             "roles": ["producer", "trader"]},
            format="json",
        ),
        201,
    )["id"]  # fmt: skip
    ok(issuer.post(f"/api/v1/organisations/{organisation}/approve/", {}, format="json"))
    account = ok(
        client.post(
            "/api/v1/accounts/",
            {"organisation": organisation, "kind": "trading", "name": "Trading"},
            format="json",
        ),
        201,
    )["id"]
    return organisation, account


def signed(serial: str, key: nacl.signing.SigningKey, start: dt.datetime, wh: int) -> dict:
    end = start + dt.timedelta(hours=1)
    signature = key.sign(reading_bytes(serial, start, end, wh)).signature
    return {
        "meter": serial,
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
        "wh": wh,
        "signature": base64.b64encode(signature).decode(),
    }


def test_producer_to_signed_readings_over_http():
    issuer = client_for(issuing_body_user())
    producer = token_client("lindenhof-coop")
    resident = token_client("resident-42")
    coop_org, coop_account = approved_organisation(producer, issuer, "Lindenhof eG", "HRB-1")
    resident_org, resident_account = approved_organisation(resident, issuer, "Resident 42", "R-42")

    # the issuing body registers the grid area
    area = ok(
        issuer.post(
            "/api/v1/grid-areas/",
            {"code": "10Y1001A1001A82H", "name": "DE-LU", "country": "DE",
             "time_zone": "Europe/Berlin", "emission_factor_g_per_kwh": "380.000",
             "expiry_months": 12},
            format="json",
        ),
        201,
    )["id"]  # fmt: skip

    # the producer registers a co-owned PV plant: shares 3/4 and 1/4
    device = ok(
        producer.post(
            "/api/v1/devices/",
            {
                "organisation": coop_org,
                "name": "Lindenhof rooftop PV",
                "grid_area": area,
                "technology_code": "T010101",
                "energy_source_code": "F01040100",
                "capacity_w": 99500,
                "commissioning_date": "2021-04-01",
                "latitude": "52.521918",
                "longitude": "13.413215",
                "support": "production",
                "interval_minutes": 60,
                "require_signed_readings": True,
                "issuance_policy": "automatic_hourly",
                "owners": [
                    {"organisation": coop_org, "account": coop_account, "share": "3/4"},
                    {"organisation": resident_org, "account": resident_account, "share": "1/4"},
                ],
            },
            format="json",
        ),
        201,
    )
    assert device["status"] == "draft"
    assert [o["share"] for o in device["owners"]] == ["3/4", "1/4"]
    device_id = device["id"]

    # ... and its meter with an Ed25519 key
    key = nacl.signing.SigningKey.generate()
    meter = ok(
        producer.post(
            "/api/v1/meters/",
            {"device": device_id, "serial": "LH-PV-0001",
             "public_key": base64.b64encode(bytes(key.verify_key)).decode()},
            format="json",
        ),
        201,
    )  # fmt: skip
    assert meter["public_key"] == base64.b64encode(bytes(key.verify_key)).decode()

    # readings are refused until the device is approved
    early = [signed("LH-PV-0001", key, hours_ago(30), 100)]
    response = producer.post("/api/v1/readings/", early, format="json")
    assert ok(response, 400)["extra"]["errors"][0]["code"] == "device_not_active"

    # submitted, approved by the issuing body, activated by the producer
    ok(producer.post(f"/api/v1/devices/{device_id}/submit/", {}, format="json"))
    assert producer.post(f"/api/v1/devices/{device_id}/approve/", {}).status_code == 403
    ok(
        issuer.post(
            f"/api/v1/devices/{device_id}/approve/", {"reason": "Site visit"}, format="json"
        )
    )
    assert (
        ok(producer.post(f"/api/v1/devices/{device_id}/activate/", {}, format="json"))["status"]
        == "active"
    )
    anonymous = APIClient()
    public = ok(anonymous.get(f"/api/v1/devices/{device_id}/"))
    assert public["status"] == "active" and public["owners"] is None

    # a day of signed hourly readings: the first half as JSON ...
    first = hours_ago(24)
    rows = [signed("LH-PV-0001", key, first + dt.timedelta(hours=h), 1000 * h) for h in range(24)]
    json_result = ok(producer.post("/api/v1/readings/", rows[:12], format="json"), 201)
    assert (json_result["status"], json_result["stored"]) == ("accepted", 12)

    # ... the second half as a CSV upload
    lines = ["meter,start,end,wh,signature"] + [
        f"{r['meter']},{r['start']},{r['end']},{r['wh']},{r['signature']}" for r in rows[12:]
    ]
    csv_result = ok(
        producer.post(
            f"/api/v1/readings/?device={device_id}",
            data=("\n".join(lines) + "\n").encode(),
            content_type="text/csv",
        ),
        201,
    )
    assert csv_result["stored"] == 12 and csv_result["batch"]["device"] == device_id

    # re-sending is harmless; a forged value is caught
    assert ok(producer.post("/api/v1/readings/", rows[:12], format="json"))["status"] == (
        "unchanged"
    )
    forged = dict(rows[5], wh=rows[5]["wh"] + 1)
    response = producer.post("/api/v1/readings/", [forged], format="json")
    assert ok(response, 400)["extra"]["errors"][0]["code"] == "signature_invalid"

    # the readings are listed and each is provable against its batch root
    listed = ok(producer.get(f"/api/v1/readings/?device={device_id}&page_size=100"))
    assert listed["count"] == 24 and all(item["is_signed"] for item in listed["results"])
    some = listed["results"][17]
    proof = ok(producer.get(f"/api/v1/readings/{some['id']}/proof/"))
    verify_inclusion(
        leaf_hash(proof["canonical"].encode()),
        proof["index"],
        proof["tree_size"],
        [bytes.fromhex(h) for h in proof["proof"]],
        bytes.fromhex(proof["merkle_root"]),
    )
    assert proof["ledger"]["subject"] == f"reading_batch:{proof['batch_id']}"
    batches = ok(producer.get(f"/api/v1/reading-batches/?device={device_id}"))["results"]
    assert sorted(b["size"] for b in batches) == [12, 12]
    # the resident co-owner sees the plant fully, another producer does not see its readings
    assert ok(resident.get(f"/api/v1/devices/{device_id}/"))["owners"] is not None
    stranger = token_client("stranger")
    assert ok(stranger.get("/api/v1/readings/"))["count"] == 0
