"""The user story, through the HTTP API only (after setting up the plant and the people):

a producer gets hourly certificates for a day of readings, sells part to a buyer, the
buyer retires part for a named beneficiary, and anyone can open the statement and the
full history, with proofs that `python -m ledger.verify` accepts.
"""

import datetime as dt
import json
from fractions import Fraction

import pytest
from rest_framework.test import APIClient

from certificates.replay import replay_ledger
from ledger.keys import registry_signer
from ledger.services import checkpoint_create
from ledger.verify.__main__ import main as verify_main
from tests.certificates.factories import DAY, MeterFactory, device_with_owners, holder
from tests.conftest import client_for
from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user

pytestmark = pytest.mark.django_db


def _ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


@pytest.mark.subject_index  # checkpoints commit the subject map, as in production
def test_producer_sells_buyer_retires_anyone_verifies(django_capture_on_commit_callbacks, tmp_path):
    # given an approved co-owned PV plant, its producer, a buyer and the issuing body
    device, (producer_account, _neighbour_account) = device_with_owners(
        [Fraction(3, 4), Fraction(1, 4)]
    )
    meter = MeterFactory(device=device)
    producer = client_for(holder(producer_account))
    buyer_account = AccountFactory(
        organisation=OrganisationFactory(legal_name="GreenBuy Energy GmbH", is_producer=False)
    )
    buyer = client_for(holder(buyer_account))
    issuing_body = client_for(issuing_body_user())
    anyone = APIClient()

    def call(client, method, url, body=None, status=200):
        with django_capture_on_commit_callbacks(execute=True):  # the integrator runs on commit
            response = getattr(client, method)(url, body, format="json")
        return _ok(response, status)

    # the producer uploads a day of hourly readings
    readings = [
        {
            "meter": meter.serial,
            "start": (DAY + dt.timedelta(hours=h)).isoformat(),
            "end": (DAY + dt.timedelta(hours=h + 1)).isoformat(),
            "wh": 0 if h < 5 or h > 20 else 2_000 + 500 * h,
        }
        for h in range(24)
    ]
    call(producer, "post", "/api/v1/readings/", readings, status=201)

    # when the producer asks for hourly certificates and the issuing body approves
    request = call(
        producer,
        "post",
        "/api/v1/issuance-requests/",
        {
            "device": device.pk,
            "period_start": DAY.isoformat(),
            "period_end": (DAY + dt.timedelta(days=1)).isoformat(),
            "granularity": "hour",
        },
        status=201,
    )
    assert request["status"] == "pending"
    approved = call(issuing_body, "post", f"/api/v1/issuance-requests/{request['id']}/approve/")
    assert approved["status"] == "approved"
    assert approved["issued_wh"] == sum(r["wh"] for r in readings)

    # then the producer holds 3/4 of every productive hour, as hourly bundles
    held = call(producer, "get", f"/api/v1/bundles/?account={producer_account.pk}&status=active")
    assert held["count"] == 16  # 06:00-20:59
    noon = call(
        producer,
        "get",
        f"/api/v1/bundles/?account={producer_account.pk}"
        f"&period_after={(DAY + dt.timedelta(hours=12)).isoformat().replace('+', '%2B')}"
        f"&period_before={(DAY + dt.timedelta(hours=13)).isoformat().replace('+', '%2B')}",
    )["results"][0]
    assert noon["volume_wh"] == (2_000 + 500 * 12) * 3 // 4
    assert noon["technology_code"] == "T020001" and noon["country"] == "DE"

    # when the producer sells 5 kWh of the noon hour to the buyer
    sale = call(
        producer,
        "post",
        f"/api/v1/bundles/{noon['id']}/transfers/",
        {"to_account": buyer_account.number, "volume_wh": 5_000},
        status=201,
    )
    assert sale["status"] == "completed" and sale["source_bundle"] == noon["id"]

    # and the buyer retires 3 kWh of it for a named beneficiary
    retirement = call(
        buyer,
        "post",
        f"/api/v1/bundles/{sale['bundle']}/retirements/",
        {
            "volume_wh": 3_000,
            "beneficiary_name": "Bäckerei Sonnenschein",
            "beneficiary_country": "DE",
            "consumption_start": (DAY + dt.timedelta(hours=12)).isoformat(),
            "consumption_end": (DAY + dt.timedelta(hours=13)).isoformat(),
            "location": "Berlin",
            "purpose": "scope2_market_based",
        },
        status=201,
    )
    checkpoint_create()  # the periodic checkpoint

    # then anyone opens the statement, without logging in
    statement = _ok(anyone.get(f"/api/v1/statements/{retirement['public_id']}/"))
    assert statement["retirement"]["beneficiary_name"] == "Bäckerei Sonnenschein"
    assert [c["volume_wh"] for c in statement["certificates"]] == [3_000]
    assert [s["kind"] for s in statement["history"]] == [
        "issuance_request.approved",
        "certificate.transferred",
        "certificate.retired",
    ]
    page = anyone.get(retirement["statement_url"])
    assert page.status_code == 200 and "Bäckerei Sonnenschein".encode() in page.content
    download = anyone.get(f"/statements/{retirement['public_id']}.json")
    assert download.status_code == 200

    # and `python -m ledger.verify history --file` accepts the statement as downloaded
    key = registry_signer().vkey
    path = tmp_path / "statement.json"
    path.write_bytes(download.content)
    assert verify_main(["history", "--file", str(path), "--key", key]) == 0

    # and the full history of the retired Wh, found by its unit number, verifies too
    unit = statement["certificates"][0]["unit_start"]
    trace = _ok(anyone.get(f"/api/v1/units/{device.pk}/{unit}/"))
    assert trace["bundle"]["status"] == "retired"
    assert trace["history"]["bundle_ids"][0] == noon["id"]
    path.write_text(json.dumps(trace["history"]["verify"]))
    assert verify_main(["history", "--file", str(path), "--key", key]) == 0
    history = _ok(anyone.get(f"/api/v1/bundles/{noon['id']}/history/"))
    assert history["children"] and history["steps"][0]["proof"] is not None

    # and the public certificate page shows the timeline
    page = anyone.get(f"/certificates/{sale['bundle']}/")
    assert page.status_code == 200 and b"Ownership timeline" in page.content

    # and the ledger alone rebuilds what the tables say
    assert replay_ledger().ok
