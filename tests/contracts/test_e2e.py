"""The story: a producer and a buyer sign a pay-as-produced PPA and watch certificates move
on each issuance (through the HTTP API)."""

import datetime as dt

import pytest
from nacl.signing import SigningKey

from certificates import services as certificates
from tests.certificates.factories import DAY
from tests.conftest import client_for
from tests.contracts.conftest import END, START

pytestmark = pytest.mark.django_db


def test_producer_and_buyer_sign_a_ppa_and_certificates_move_on_each_issuance(
    world, django_capture_on_commit_callbacks
):
    producer, buyer = client_for(world.seller), client_for(world.buyer)
    signing = SigningKey.generate()

    # the producer registers a signing key and drafts the PPA
    key = producer.post(
        "/api/v1/contracts/keys/",
        {
            "organisation": world.seller_account.organisation_id,
            "name": "board",
            "public_key": signing.verify_key.encode().hex(),
        },
        format="json",
    )
    assert key.status_code == 201, key.content
    draft = producer.post(
        "/api/v1/contracts/",
        {
            "kind": "ppa_pay_as_produced",
            "terms": {
                "device_id": world.device.pk,
                "seller_account": world.seller_account.number,
                "buyer_account": world.buyer_account.number,
                "share_bp": 4_000,
                "price_per_mwh_minor": 6_500,
                "currency": "EUR",
            },
            "start_at": START.isoformat(),
            "end_at": END.isoformat(),
        },
        format="json",
    )
    assert draft.status_code == 201, draft.content
    contract_id = draft.json()["id"]

    # both agree: the producer with a signature over the canonical document
    document = producer.get(f"/api/v1/contracts/{contract_id}/document/").content
    signed = producer.post(
        f"/api/v1/contracts/{contract_id}/agree/",
        {"key": key.json()["id"], "signature": signing.sign(document).signature.hex()},
        format="json",
    )
    assert signed.json()["status"] == "draft"
    agreed = buyer.post(f"/api/v1/contracts/{contract_id}/agree/", {}, format="json")
    assert agreed.json()["status"] == "active"

    # the buyer previews the next issuance, then two issuances run
    for hour in (0, 3):
        with django_capture_on_commit_callbacks(execute=True):
            certificates.certificate_issue(
                actor=world.ib,
                device_id=world.device.pk,
                period_start=DAY + dt.timedelta(hours=hour),
                period_end=DAY + dt.timedelta(hours=hour + 3),
            )

    executions = buyer.get(f"/api/v1/contracts/{contract_id}/executions/").json()["results"]
    assert [e["status"] for e in executions] == ["applied", "applied"]
    bundles = buyer.get(
        "/api/v1/bundles/", {"account": world.buyer_account.pk, "status": "active"}
    ).json()["results"]
    moved = sum(b["volume_wh"] for b in bundles)
    assert moved == sum(p[2] for e in executions for p in e["result"]["periods"])
    obligations = buyer.get(f"/api/v1/contracts/{contract_id}/obligations/").json()["results"]
    assert [o["status"] for o in obligations] == ["open", "open"]
    assert sum(o["amount_minor"] for o in obligations) == sum(
        (e["result"]["volume_wh"] * 6_500 + 500_000) // 1_000_000 for e in executions
    )
    dry = buyer.get(f"/api/v1/contracts/{contract_id}/dry-run/", {"period": DAY.strftime("%Y-%m")})
    assert dry.json()["would_do"]["volume_wh"] == moved
