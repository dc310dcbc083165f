"""The story: a battery in a community shifts midday solar into the evening, with correct
storage certificates (through the HTTP API and the calendar tick)."""

import pytest

from certificates.models import Bundle, Issuance
from contracts.models import ContractExecution
from contracts.tasks import contracts_calendar_tick_task
from tests.certificates.factories import DAY
from tests.conftest import client_for
from tests.contracts.storage_world import END, START, issue_solar, make_world, storage_terms

pytestmark = pytest.mark.django_db


def test_a_community_battery_shifts_midday_solar_into_the_evening():
    world = make_world()
    issue_solar(world)
    community = client_for(world.operator)

    # the community drafts the contract and agrees: it is the only party
    draft = community.post(
        "/api/v1/contracts/",
        {
            "kind": "storage_balancing",
            "terms": storage_terms(world),
            "start_at": START.isoformat(),
            "end_at": END.isoformat(),
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="storage-draft-1",
    )
    assert draft.status_code == 201, draft.content
    contract_id = draft.json()["id"]
    agreed = community.post(
        f"/api/v1/contracts/{contract_id}/agree/", HTTP_IDEMPOTENCY_KEY="storage-agree-1"
    )
    assert agreed.status_code == 200, agreed.content
    assert agreed.json()["status"] == "active"

    # the dry run shows the battery's next day (the contract's first)
    dry = community.get(f"/api/v1/contracts/{contract_id}/dry-run/")
    assert dry.status_code == 200, dry.content
    assert dry.json()["trigger"] == f"day:{DAY.date().isoformat()}"
    assert dry.json()["would_do"]["certified_wh"] == 12_000
    wrong = community.get(f"/api/v1/contracts/{contract_id}/dry-run/?period=2026-13-01")
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_terms"

    # the calendar tick executes the day (and stops at the next, which has no readings)
    contracts_calendar_tick_task()
    executions = community.get(f"/api/v1/contracts/{contract_id}/executions/").json()["results"]
    statuses = [(e["trigger"], e["status"]) for e in executions]
    assert (f"day:{DAY.date().isoformat()}", "applied") in statuses
    assert ContractExecution.objects.filter(contract_id=contract_id, status="applied").count() == 1

    # the storage certificates carry the origin of what charged the battery
    storage = Bundle.objects.filter(issuance__in=Issuance.objects.filter(is_storage=True))
    first = storage.order_by("unit_start").first()
    body = community.get(f"/api/v1/bundles/{first.pk}/").json()
    assert body["is_storage"] is True
    assert body["storage_origin"]["origin_device"] == world.solar.pk
    assert body["storage_origin"]["origin_period_start"].startswith(
        DAY.replace(hour=10).isoformat()[:19]
    )
    assert body["storage_origin"]["efficiency_ppm"] == 900_000
    solar = Bundle.objects.filter(status=Bundle.Status.STORED).first()
    stored = community.get(f"/api/v1/bundles/{solar.pk}/").json()
    assert (stored["status"], stored["storage_origin"]) == ("stored", None)
