"""The story: a community's operator drafts its sharing contract, every member agrees, and
each finished day the members' certificates arrive by the key (through the HTTP API)."""

import datetime as dt

import pytest

from contracts.tasks import contracts_calendar_tick_task
from tests.certificates.factories import DAY
from tests.conftest import client_for
from tests.contracts.community_world import HOURS, PRODUCTION, held, make_world
from tests.contracts.conftest import END, START

pytestmark = pytest.mark.django_db


def test_a_community_signs_its_key_and_the_days_certificates_reach_the_members():
    world = make_world()
    operator = client_for(world.operator)
    members = [client_for(admin) for admin in world.admins]

    # a draft naming an unknown community is refused with a code, and nothing is drafted
    bad = operator.post(
        "/api/v1/contracts/",
        {
            "kind": "community_sharing",
            "terms": {"community_id": 10**9},
            "start_at": START.isoformat(),
            "end_at": END.isoformat(),
        },
        format="json",
    )
    assert bad.status_code == 400, bad.content
    assert bad.json()["code"] == "terms_unmet"  # no such community

    # the operator drafts it for the community: the members and the key are pinned
    draft = operator.post(
        "/api/v1/contracts/",
        {
            "kind": "community_sharing",
            "terms": {"community_id": world.community.pk},
            "start_at": START.isoformat(),
            "end_at": END.isoformat(),
        },
        format="json",
    )
    assert draft.status_code == 201, draft.content
    contract = draft.json()
    assert contract["terms"]["granularity"] == "day"
    assert [m["member_id"] for m in contract["terms"]["members"]] == [m.pk for m in world.members]

    # everyone agrees: active only after the last member
    for client in (operator, members[0]):
        agreed = client.post(f"/api/v1/contracts/{contract['id']}/agree/")
        assert agreed.status_code == 200, agreed.content
        assert agreed.json()["status"] == "draft"
    agreed = members[1].post(f"/api/v1/contracts/{contract['id']}/agree/")
    assert agreed.json()["status"] == "active"

    # a member looks ahead at the issued day
    dry = members[0].get(
        f"/api/v1/contracts/{contract['id']}/dry-run/", {"period": f"{DAY:%Y-%m-%d}"}
    )
    assert dry.status_code == 200, dry.content
    assert dry.json()["would_do"]["held_wh"] == sum(PRODUCTION)
    assert dry.json()["would_fail"] is None

    # the calendar tick runs the finished days; the issued one is applied
    contracts_calendar_tick_task()
    executions = members[1].get(f"/api/v1/contracts/{contract['id']}/executions/")
    rows = {row["trigger"]: row for row in executions.json()["results"]}
    day = rows[f"day:{DAY:%Y-%m-%d}"]
    assert day["status"] == "applied"
    assert len(day["result"]["hours"]) == HOURS
    given = {row["member_id"]: row["distributed_wh"] for row in day["result"]["members"]}
    for member in world.members:
        assert held(member.account_id) == given.get(member.pk, 0)
    assert day["result"]["distributed_wh"] + day["result"]["kept_wh"] == sum(PRODUCTION)
    earlier = rows[f"day:{DAY - dt.timedelta(days=1):%Y-%m-%d}"]
    assert (earlier["status"], earlier["reason_code"]) == ("parked", "no_certificates")
