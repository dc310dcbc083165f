import datetime as dt

import pytest
from rest_framework.test import APIClient

from accounts.models import Account
from certificates.models import Bundle, Transfer
from tests.certificates.conftest import snapshot
from tests.certificates.factories import DAY
from tests.certificates.permission_cases import CLAIM
from tests.conftest import client_for
from tests.factories import AccountFactory, auditor_user

pytestmark = pytest.mark.django_db


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+", "%2B")


def test_bundle_search_filters_and_scopes(issued):
    producer = client_for(issued.producer)
    url = "/api/v1/bundles/"
    assert producer.get(url).json()["count"] == 24
    assert client_for(issued.buyer).get(url).json()["count"] == 0
    assert client_for(issued.ib).get(url).json()["count"] == 48
    assert client_for(auditor_user()).get(url).json()["count"] == 48
    assert APIClient().get(url).status_code == 401
    ib = client_for(issued.ib)
    for query, count in [
        ("technology=T020001", 48),
        ("technology=T010000", 0),
        (f"grid_area={issued.device.grid_area.code}", 48),
        ("country=DE", 48),
        (f"device={issued.device.pk}", 48),
        (f"account={issued.neighbour_account.pk}", 24),
        (f"account_number={issued.neighbour_account.number}", 24),
        ("status=active", 48),
        ("status=retired&status=expired", 0),
        (f"period_after={_iso(DAY + dt.timedelta(hours=20))}", 8),
        (f"period_before={_iso(DAY + dt.timedelta(hours=2))}", 4),
    ]:
        assert ib.get(f"{url}?{query}").json()["count"] == count, query
    bundle = ib.get(f"{url}?ordering=-period_start").json()["results"][0]
    assert bundle["period_start"].startswith((DAY + dt.timedelta(hours=23)).strftime("%Y-%m-%dT%H"))
    assert bundle["status"] == "active" and bundle["registry_origin"]


def test_anyone_reads_a_bundle_and_its_history(issued):
    bundle = issued.bundles[0]
    anyone = APIClient()
    body = anyone.get(f"/api/v1/bundles/{bundle.pk}/").json()
    assert body["volume_wh"] == bundle.volume_wh and body["account_number"]
    history = anyone.get(f"/api/v1/bundles/{bundle.pk}/history/").json()
    assert history["bundle_ids"] == [bundle.pk]
    assert anyone.get("/api/v1/bundles/999999/").status_code == 404
    assert anyone.get("/api/v1/bundles/abc/").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"volume_wh": 10**9}, 409, "insufficient_volume"),
        # the schema says minimum 1, so the serializer refuses these before the service
        ({"volume_wh": 0}, 400, "invalid"),
        ({"volume_wh": -3}, 400, "invalid"),
        ({"volume_wh": "lots"}, 400, "invalid"),
        ({"volume_wh": "1"}, 400, "invalid"),  # the schema's integer is a number, not text
        ({"colour": "green"}, 400, "invalid"),
        ({"to_account": "GP-NOPE"}, 404, "account_not_found"),
    ],
)
def test_transfer_errors_have_codes_and_change_nothing(issued, body, status, code):
    before = snapshot()
    response = client_for(issued.producer).post(
        f"/api/v1/bundles/{issued.bundles[0].pk}/transfers/",
        {"to_account": issued.buyer_account.number} | body,
        format="json",
    )
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert snapshot() == before


@pytest.mark.parametrize("pk", ["096873076066975131074", str(2**63), str(2**70)])
@pytest.mark.parametrize("action", ["transfers", "retirements"])
def test_a_write_on_a_bundle_id_beyond_bigint_is_a_404(issued, pk, action):
    # given a path id no bigint column holds (the schema fuzzer sent the first one)
    before = snapshot()
    body = {"volume_wh": 1} | (
        {"to_account": issued.buyer_account.number} if action == "transfers" else CLAIM
    )
    # when
    response = client_for(issued.producer).post(
        f"/api/v1/bundles/{pk}/{action}/", body, format="json"
    )
    # then: no such bundle, not the database's out-of-range error as a 500
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "bundle_not_found"
    assert snapshot() == before


def test_transfer_to_closed_account_and_foreign_bundle(issued):
    closed = AccountFactory(status=Account.Status.CLOSED)
    producer = client_for(issued.producer)
    before = snapshot()
    response = producer.post(
        f"/api/v1/bundles/{issued.bundles[0].pk}/transfers/",
        {"to_account": closed.number},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (409, "account_closed")
    foreign = Bundle.objects.filter(account=issued.neighbour_account).first()
    response = producer.post(
        f"/api/v1/bundles/{foreign.pk}/transfers/",
        {"to_account": issued.buyer_account.number},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (403, "not_bundle_holder")
    assert snapshot() == before


def test_a_retried_transfer_with_the_same_idempotency_key_acts_once(issued):
    producer = client_for(issued.producer)
    url = f"/api/v1/bundles/{issued.bundles[0].pk}/transfers/"
    body = {"to_account": issued.buyer_account.number, "volume_wh": 50}
    first = producer.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="sale-42")
    second = producer.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="sale-42")
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == second.json()
    assert Transfer.objects.count() == 1
    other = producer.post(
        url, body | {"volume_wh": 51}, format="json", HTTP_IDEMPOTENCY_KEY="sale-42"
    )
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")


def test_batch_and_acceptance_through_the_api(issued):
    producer, buyer = client_for(issued.producer), client_for(issued.buyer)
    response = producer.post(
        "/api/v1/transfers/batch/",
        {
            "to_account": issued.buyer_account.number,
            "items": [
                {"bundle": issued.bundles[0].pk},
                {"bundle": issued.bundles[1].pk, "volume_wh": 9},
            ],
            "require_acceptance": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    first, second = response.json()
    assert first["status"] == second["status"] == "pending"
    assert buyer.get("/api/v1/transfers/?status=pending").json()["count"] == 2
    assert buyer.post(f"/api/v1/transfers/{first['id']}/accept/").json()["status"] == "accepted"
    assert buyer.post(f"/api/v1/transfers/{second['id']}/reject/").json()["status"] == "rejected"
    again = buyer.post(f"/api/v1/transfers/{second['id']}/accept/")
    assert (again.status_code, again.json()["code"]) == (409, "transfer_not_pending")


def test_retirement_without_beneficiary_is_a_400_with_a_code(issued):
    before = snapshot()
    response = client_for(issued.producer).post(
        f"/api/v1/bundles/{issued.bundles[0].pk}/retirements/",
        {
            "consumption_start": DAY.isoformat(),
            "consumption_end": (DAY + dt.timedelta(hours=1)).isoformat(),
            "purpose": "disclosure",
        },
        format="json",
    )
    # the schema marks the beneficiary required, so the serializer refuses it first
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "invalid")
    assert set(body["extra"]["fields"]) == {"beneficiary_name", "beneficiary_country"}
    assert snapshot() == before


def test_retirement_for_an_unassigned_country_code_is_a_400(issued):
    # given: "ZZ" has the shape of a country code but is no country
    before = snapshot()
    # when
    response = client_for(issued.producer).post(
        f"/api/v1/bundles/{issued.bundles[0].pk}/retirements/",
        {
            "beneficiary_name": "Someone",
            "beneficiary_country": "ZZ",
            "consumption_start": DAY.isoformat(),
            "consumption_end": (DAY + dt.timedelta(hours=1)).isoformat(),
            "purpose": "disclosure",
        },
        format="json",
    )
    # then
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "beneficiary_country" in response.json()["extra"]["fields"]
    assert snapshot() == before


def test_retirements_list_detail_and_public_statement(issued):
    producer = client_for(issued.producer)
    response = producer.post(
        "/api/v1/retirements/",
        {
            "items": [
                {"bundle": issued.bundles[0].pk},
                {"bundle": issued.bundles[1].pk, "volume_wh": 10},
            ],
            "beneficiary_name": "Cooperative members",
            "beneficiary_country": "DE",
            "consumption_start": DAY.isoformat(),
            "consumption_end": (DAY + dt.timedelta(hours=2)).isoformat(),
            "purpose": "hourly_matching",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    public_id = response.json()["public_id"]
    assert producer.get("/api/v1/retirements/").json()["count"] == 1
    assert producer.get(f"/api/v1/retirements/{public_id}/").status_code == 200
    assert client_for(issued.buyer).get(f"/api/v1/retirements/{public_id}/").status_code == 404
    statement = APIClient().get(f"/api/v1/statements/{public_id}/").json()
    assert statement["retirement"]["volume_wh"] == issued.bundles[0].volume_wh + 10
    assert len(statement["certificates"]) == 2 and statement["withdrawn"] is False
    assert "python -m ledger.verify history" in statement["verify_command"]
    missing = APIClient().get("/api/v1/statements/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404


def test_issuance_requests_and_withdrawals_through_the_api(plant):
    producer, ib = client_for(plant.producer), client_for(plant.ib)
    created = producer.post(
        "/api/v1/issuance-requests/",
        {
            "device": plant.device.pk,
            "period_start": DAY.isoformat(),
            "period_end": (DAY + dt.timedelta(days=1)).isoformat(),
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    req = created.json()
    unaligned = producer.post(
        "/api/v1/issuance-requests/",
        {
            "device": plant.device.pk,
            "period_start": (DAY + dt.timedelta(minutes=5)).isoformat(),
            "period_end": (DAY + dt.timedelta(days=1)).isoformat(),
        },
        format="json",
    )
    assert (unaligned.status_code, unaligned.json()["code"]) == (400, "invalid_period")
    approved = ib.post(f"/api/v1/issuance-requests/{req['id']}/approve/")
    assert approved.status_code == 200 and approved.json()["issued_wh"] > 0
    bundle = Bundle.objects.filter(account=plant.producer_account).first()
    refused = producer.post(
        "/api/v1/withdrawals/", {"reason": "x", "bundles": [bundle.pk]}, format="json"
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_issuing_body")
    no_reason = ib.post("/api/v1/withdrawals/", {"bundles": [bundle.pk]}, format="json")
    # the schema marks the reason required: the serializer refuses it first
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "invalid")
    assert "reason" in no_reason.json()["extra"]["fields"]
    done = ib.post(
        "/api/v1/withdrawals/", {"reason": "meter fault", "bundles": [bundle.pk]}, format="json"
    )
    assert done.status_code == 201 and done.json()["items"][0]["previous_status"] == "active"
    assert APIClient().get("/api/v1/withdrawals/").json()["count"] == 1


def test_transfer_policy_endpoint(issued):
    from tests.certificates.factories import holder

    admin = client_for(holder(issued.buyer_account, role="admin"))
    url = f"/api/v1/transfer-policies/{issued.buyer_account.organisation_id}/"
    assert admin.get(url).json() == {
        "organisation": issued.buyer_account.organisation_id,
        "require_acceptance": False,
    }
    assert admin.put(url, {"require_acceptance": True}, format="json").status_code == 200
    sale = client_for(issued.producer).post(
        f"/api/v1/bundles/{issued.bundles[0].pk}/transfers/",
        {"to_account": issued.buyer_account.number},
        format="json",
    )
    assert sale.json()["status"] == "pending"


def test_unit_trace_of_a_unit_never_issued_is_404(issued):
    response = APIClient().get(f"/api/v1/units/{issued.device.pk}/{10**12}/")
    assert (response.status_code, response.json()["code"]) == (404, "bundle_not_found")


def test_public_pages(issued):
    anyone = APIClient()
    assert anyone.get("/certificates/").status_code == 200
    bundle = issued.bundles[2]
    found = anyone.get(f"/certificates/?bundle={bundle.pk}")
    assert found.status_code == 302 and found.url == f"/certificates/{bundle.pk}/"
    traced = anyone.get(f"/certificates/?device={issued.device.pk}&unit={bundle.unit_start + 1}")
    assert traced.status_code == 302 and traced.url.startswith(f"/certificates/{bundle.pk}/")
    assert (
        b"never issued"
        in anyone.get(f"/certificates/?device={issued.device.pk}&unit=999999999").content
    )
    page = anyone.get(f"/certificates/{bundle.pk}/")
    assert page.status_code == 200 and b"T020001" in page.content
    assert anyone.get("/certificates/99999999/").status_code == 404


def test_admin_actions_call_the_services(issued, client):
    from certificates.models import Withdrawal

    admin_user = issued.ib
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(admin_user)
    changelist = "/admin/certificates/bundle/"
    assert client.get(changelist).status_code == 200
    picked = {"action": "withdraw", "_selected_action": [issued.bundles[0].pk]}
    form = client.post(changelist, picked)
    assert form.status_code == 200 and b"Reason" in form.content
    done = client.post(changelist, picked | {"apply": "1", "reason": "meter double counted"})
    assert done.status_code == 302
    assert Withdrawal.objects.get().reason == "meter double counted"
    assert Bundle.objects.get(pk=issued.bundles[0].pk).status == Bundle.Status.WITHDRAWN
    for page in ("issuance", "issuancerequest", "transfer", "retirement", "withdrawal"):
        assert client.get(f"/admin/certificates/{page}/").status_code == 200, page
