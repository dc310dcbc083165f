"""The household's story through the HTTP API: its smart meter's readings drive a standing
retirement that retires, hour by hour, what the household consumed; each hour's statement
verifies offline."""

import datetime as dt
from fractions import Fraction

import pytest
from rest_framework.test import APIClient

from accounts.models import Organisation
from certificates import services as certificates
from certificates.replay import replay_ledger
from contracts import services as contracts
from ledger.keys import registry_signer
from ledger.services import checkpoint_create, ledger_integrate_pending
from ledger.verify.__main__ import main as verify_main
from tests.assets.factories import (
    DeviceFactory,
    GridAreaFactory,
    MeterFactory,
    add_key,
    interval_row,
    signing_key,
)
from tests.certificates.factories import DAY, add_readings, device_with_owners
from tests.consumers.factories import new_metering_point
from tests.factories import UserFactory, issuing_body_user

pytestmark = [pytest.mark.django_db, pytest.mark.subject_index]  # statements prove completeness

HOUR = dt.timedelta(hours=1)
PERIOD = f"{DAY.year:04d}-{DAY.month:02d}"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _ok(response, status=200):
    assert response.status_code == status, response.content[:500]
    return response.json()


def test_a_households_standing_retirement_retires_its_hourly_consumption_with_statements(
    tmp_path,
):
    # given a person who registers a household with a confirmed site and a smart meter
    area = GridAreaFactory()
    ib = issuing_body_user()
    person = _client(UserFactory(username="robin"))
    household = _ok(
        person.post(
            "/api/v1/households/me/",
            {
                "name": "Robin",
                "street": "3 Way",
                "postcode": "10115",
                "city": "Berlin",
                "country": "DE",
            },
        ),
        201,
    )
    site = _ok(
        person.post(
            "/api/v1/sites/",
            {
                "name": "Home",
                "metering_point_id": new_metering_point(),
                "grid_area_id": area.pk,
                "street": "3 Way",
                "postcode": "10115",
                "city": "Berlin",
            },
        ),
        201,
    )
    _ok(_client(ib).post(f"/api/v1/sites/{site['id']}/confirm/", {}))
    organisation = Organisation.objects.get(pk=household["organisation"])
    meter = MeterFactory(
        device=DeviceFactory(organisation=organisation, grid_area=area), kind="consumption"
    )
    key = signing_key(7)
    add_key(meter, key)
    _ok(
        person.post(
            f"/api/v1/sites/{site['id']}/meters/", {"meter_id": meter.pk, "role": "import"}
        ),
        201,
    )
    # and its meter reports three of four hours: 400, 1,500 and 250 Wh (hour 2 is missing)
    consumed = {0: 400, 1: 1_500, 3: 250}
    rows = [interval_row(meter, DAY + h * HOUR, wh, key=key) for h, wh in consumed.items()]
    upload = _ok(person.post(f"/api/v1/sites/{site['id']}/readings/", rows, format="json"), 201)
    assert upload["stored"] == 3
    # and its rooftop plant's certificates, 1,000 Wh per hour, were issued to its account
    plant, (account,) = device_with_owners([Fraction(1)], producer=organisation, grid_area=area)
    add_readings(plant, hours=4, wh=lambda i: 1_000)
    certificates.certificate_issue(
        actor=ib, device_id=plant.pk, period_start=DAY, period_end=DAY + 4 * HOUR
    )

    # when the household signs a standing retirement and previews the month
    contract = _ok(
        person.post(
            "/api/v1/contracts/",
            {
                "kind": "standing_retirement",
                "terms": {
                    "account": account.number,
                    "beneficiary_name": "Robin",
                    "beneficiary_country": "DE",
                    "purpose": "disclosure",
                },
                "start_at": (DAY - dt.timedelta(days=1)).isoformat(),
                "end_at": (DAY + dt.timedelta(days=365)).isoformat(),
            },
            format="json",
        ),
        201,
    )
    agreed = _ok(person.post(f"/api/v1/contracts/{contract['id']}/agree/", {}, format="json"))
    dry = _ok(person.get(f"/api/v1/contracts/{contract['id']}/dry-run/", {"period": PERIOD}))
    # and the calendar runs it once the month is over
    execution = contracts.contract_execute(
        contract_id=contract["id"], trigger=f"period:{PERIOD}", now=DAY + dt.timedelta(days=40)
    )

    # then it retired min(certificates, consumption) per hour and nothing for hour 2
    assert agreed["status"] == "active"
    assert dry["would_do"]["volume_wh"] == 400 + 1_000 + 250
    assert execution.status == "applied", execution.reason_detail
    assert [row[1] for row in execution.result["hours_retired"]] == [400, 1_000, 250]
    assert [row[1] for row in execution.result["hours_skipped"]] == ["no_readings"]
    # and each hour's statement names the household and that hour, and verifies offline
    ledger_integrate_pending()
    checkpoint_create()
    verify_key = registry_signer().vkey
    hours = [DAY, DAY + HOUR, DAY + 3 * HOUR]
    for public_id, hour, wh in zip(
        execution.result["retirements"], hours, [400, 1_000, 250], strict=True
    ):
        statement = _ok(person.get(f"/api/v1/statements/{public_id}/"))
        retirement = statement["retirement"]
        assert retirement["beneficiary_name"] == "Robin"
        assert retirement["volume_wh"] == wh
        assert dt.datetime.fromisoformat(retirement["consumption_start"]) == hour
        download = person.get(f"/statements/{public_id}.json")
        assert download.status_code == 200
        path = tmp_path / f"{public_id}.json"
        path.write_bytes(download.content)
        assert verify_main(["history", "--file", str(path), "--key", verify_key]) == 0
    # and the ledger alone rebuilds the holdings after the retirements
    assert replay_ledger().ok
