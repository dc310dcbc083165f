"""The user story through the HTTP API: a driver charges twice and gets two receipts whose
renewable share is proven by retirement statements."""

import datetime as dt

import pytest

from accounts.models import Membership
from assets.models import Meter
from certificates.replay import replay_ledger
from ledger.keys import registry_signer
from ledger.services import checkpoint_create, ledger_integrate_pending
from ledger.verify.__main__ import main as verify_main
from tests.certificates.factories import DeviceFactory, MeterFactory
from tests.charging.factories import DAY, TARIFF, ocmf_key, renewable_hours, tx_event
from tests.conftest import client_for
from tests.factories import OrganisationFactory, member_of

pytestmark = [pytest.mark.django_db, pytest.mark.subject_index]  # statements prove completeness


def _ok(response, status=200):
    assert response.status_code == status, response.content[:500]
    return response.json()


def test_a_driver_charges_twice_and_gets_two_receipts_proven_by_retirement_statements(tmp_path):
    # given: a CPO with a charger and a tariff, a driver organisation with a card
    cpo = OrganisationFactory(legal_name="Car Park Charging GmbH", country="DE")
    driver = OrganisationFactory(legal_name="Ada Driver e.K.", country="DE")
    operator = client_for(member_of(cpo, Membership.Role.OPERATOR))
    driver_client = client_for(member_of(driver, Membership.Role.ADMIN))
    device = DeviceFactory(organisation=cpo, name="Charger 1")
    meter = MeterFactory(device=device, kind=Meter.Kind.CONSUMPTION)
    _key, public = ocmf_key()
    tariff = _ok(
        operator.post(
            "/api/v1/charging/tariffs/",
            {"organisation": cpo.pk, "currency": "EUR", "elements": TARIFF},
            format="json",
        ),
        201,
    )
    station = _ok(
        operator.post(
            "/api/v1/charging/stations/",
            {
                "device": device.pk,
                "meter_serial": meter.serial,
                "evse_id": "DE*GPR*E0001",
                "tariff": tariff["id"],
                "ocmf_public_key": public,
            },
            format="json",
        ),
        201,
    )
    _ok(
        driver_client.post(
            "/api/v1/charging/tokens/",
            {"organisation": driver.pk, "id_token": "04A1B2C3D4E5F6", "type": "ISO14443"},
            format="json",
        ),
        201,
    )
    world = type("World", (), {"cpo": cpo, "device": device})
    account = renewable_hours(world, hours={8: 5000, 9: 4000, 18: 1000})
    events_url = f"/api/v1/charging/stations/{station['id']}/transaction-events/"

    receipts = []
    for tx, (start_hour, readings) in {
        "TX-MORNING": (8, [(15, 100), (75, 6100)]),  # 08:15 - 09:15, 6 kWh
        "TX-EVENING": (18, [(0, 6100), (30, 7100), (60, 9100)]),  # 18:00 - 19:00, 3 kWh
    }.items():
        start = DAY + dt.timedelta(hours=start_hour)
        # when: the station reports the session, and the CPO asks for the receipt
        for i, (minutes, wh) in enumerate(readings):
            kind = "Started" if i == 0 else "Ended" if i == len(readings) - 1 else "Updated"
            message = tx_event(
                kind, i, start + dt.timedelta(minutes=minutes), wh, transaction_id=tx
            )
            session = _ok(operator.post(events_url, message, format="json"))
        assert session["status"] == "billed"
        receipt = _ok(
            operator.post(
                f"/api/v1/charging/sessions/{session['id']}/receipts/",
                {"account": account.pk},
                format="json",
            ),
            201,
        )
        receipts.append(receipt)
        cdr = _ok(driver_client.get(f"/api/v1/charging/sessions/{session['id']}/cdr/"))
        assert cdr["total_cost"]["excl_vat"] * 100 == pytest.approx(receipt["total_minor"])

    # then: the driver sees both receipts with their shares
    mine = _ok(driver_client.get("/api/v1/charging/receipts/"))
    listed = mine["results"] if isinstance(mine, dict) else mine
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in receipts)
    morning, evening = receipts
    assert (morning["energy_wh"], morning["renewable_wh"]) == (6000, 6000)
    assert (evening["energy_wh"], evening["renewable_wh"]) == (3000, 1000)
    assert evening["renewable_share"] == "0.3333"
    assert [h["matched_wh"] for h in evening["hours"]] == [1000]
    # and every matched hour links a statement that names the driver for that hour, and
    # the offline verifier accepts the downloaded statement with its proofs
    # the integrator (run on commit, which this test's transaction never reaches) and the
    # periodic checkpoint; without them the statements' histories would be empty
    ledger_integrate_pending()
    checkpoint_create()
    key = registry_signer().vkey
    checked = 0
    for receipt in receipts:
        for hour in receipt["hours"]:
            statement = _ok(driver_client.get(hour["statement"]))
            retirement = statement["retirement"]
            assert retirement["beneficiary_name"] == "Ada Driver e.K."
            assert retirement["volume_wh"] == hour["matched_wh"]
            assert retirement["consumption_start"].startswith(hour["hour_start"][:13])
            assert sum(c["volume_wh"] for c in statement["certificates"]) == hour["matched_wh"]
            download = driver_client.get(hour["statement_json"])
            path = tmp_path / "statement.json"
            path.write_bytes(download.content)
            assert verify_main(["history", "--file", str(path), "--key", key]) == 0
            checked += 1
    assert checked == 3
    # and the ledger alone rebuilds the certificate holdings after the retirements
    assert replay_ledger().ok
