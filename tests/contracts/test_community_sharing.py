"""Community sharing: a community's allocation key as a contract every member agreed to,
executed per period through the consumers app's distribution."""

import datetime as dt
import json

import pytest

from consumers import services as consumers
from consumers.models import CommunityDistribution
from contracts import errors, services
from contracts.kinds.community import COMMUNITY_SHARING
from contracts.models import Contract, ContractExecution
from contracts.replay_executions import replay_contracts
from contracts.tasks import contracts_calendar_tick_task
from ledger.canonical import canonical_bytes
from ledger.models import PendingEvent
from tests.assets.factories import DeviceFactory, MeterFactory
from tests.certificates.factories import DAY
from tests.consumers.factories import QUARTER, member
from tests.contracts.community_world import (
    HOURS,
    PRODUCTION,
    SHARES,
    active,
    draft,
    expected_hour,
    held,
    hour_trigger,
    make_world,
    terms,
)
from tests.contracts.conftest import END, START
from tests.factories import OrganisationFactory, member_of
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


# ------------------------------------------------------------------------------ validation


def test_terms_pin_the_members_and_the_key_and_every_member_is_a_party(world):
    # when
    contract = draft(world)

    # then
    assert contract.terms == {
        "community_id": world.community.pk,
        "granularity": "hour",
        "key_kind": "static",
        "members": [
            {
                "member_id": m.pk,
                "organisation_id": m.organisation_id,
                "account": m.account.number,
                "share": share,
            }
            for m, share in zip(world.members, SHARES, strict=True)
        ],
    }
    assert sorted(contract.parties.values_list("organisation_id", "role")) == sorted(
        [(world.community.organisation_id, "operator")]
        + [(m.organisation_id, "member") for m in world.members]
    )
    assert contract.source_account_id is None


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"community_id": 10**9}, "community_id"),
        ({"granularity": "week"}, "granularity"),
        ({"members": []}, "members"),
        ({"key_kind": "dynamic"}, "key_kind"),
        ({"share_bp": 100}, "share_bp"),
    ],
)
def test_bad_terms_are_refused_and_nothing_is_drafted(world, overrides, field):
    # when
    with pytest.raises(errors.InvalidTerms) as refused:
        draft(world, **overrides)

    # then
    assert field in refused.value.extra["fields"]
    assert not Contract.objects.exists()


def test_a_static_key_that_does_not_add_up_to_100_percent_is_refused(world):
    # given: a third member joins and the key is not set again (1/4 + 3/4 + nothing)
    org = OrganisationFactory(is_producer=False)
    meter = MeterFactory(
        device=DeviceFactory(organisation=org, grid_area=world.community.grid_area)
    )
    member(world.community, org, meter)

    # when
    with pytest.raises(errors.InvalidTerms) as refused:
        draft(world)

    # then
    assert refused.value.extra["fields"] == {"community_id": ["key shares do not add up to 100%"]}


def test_an_organisation_outside_the_community_may_not_draft_it(world):
    # given
    outsider = member_of(OrganisationFactory())

    # when / then
    with pytest.raises(errors.NotContractParty):
        services.contract_create(
            actor=outsider, kind=COMMUNITY_SHARING, terms=terms(world), start_at=START, end_at=END
        )
    assert not Contract.objects.exists()


def test_it_activates_only_when_the_operator_and_every_member_agreed(world):
    # given
    contract = draft(world)

    # when all but the last member agree
    services.contract_agree(actor=world.operator, contract_id=contract.pk)
    services.contract_agree(actor=world.admins[0], contract_id=contract.pk)
    contract.refresh_from_db()

    # then it is still a draft, and a draft executes nothing
    assert contract.status == "draft"
    assert services.contract_execute(contract_id=contract.pk, trigger=hour_trigger(0)) is None

    # when the last member agrees
    services.contract_agree(actor=world.admins[1], contract_id=contract.pk)
    contract.refresh_from_db()

    # then
    assert contract.status == "active"


def test_one_sharing_contract_at_a_time_per_community(world):
    # given
    active(world)

    # when / then
    with pytest.raises(errors.OverlappingClaims) as refused:
        draft(world, granularity="day")
    assert refused.value.extra["scope"] == "community"


# ------------------------------------------------------------------------------- execution


def test_an_hour_is_distributed_by_the_key_and_every_wh_is_accounted_for(world):
    # given
    contract = active(world)
    hour = DAY
    issued = sum(PRODUCTION[0:4])
    assert held(world.operator_account.pk, hour) == issued
    before = last_event_id()

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=hour_trigger(0))

    # then: each member holds exactly the allocation module's Wh of the hour
    assert execution.status == "applied"
    expected = expected_hour(0)
    moved = [held(m.account_id, hour) for m in world.members]
    assert moved == expected
    # conservation: moved + kept by the operator == issued, and the result says the same
    kept = held(world.operator_account.pk, hour)
    assert sum(moved) + kept == issued
    result = execution.result
    assert (result["issued_wh"], result["distributed_wh"], result["kept_wh"]) == (
        issued,
        sum(moved),
        kept,
    )
    assert result["members"] == [
        {"member_id": m.pk, "distributed_wh": wh}
        for m, wh in zip(world.members, expected, strict=True)
        if wh
    ]
    (distribution,) = CommunityDistribution.objects.all()
    assert result["hours"][0]["distribution_id"] == distribution.pk
    # the other hours were not touched
    assert held(world.operator_account.pk, DAY + dt.timedelta(hours=1)) == sum(PRODUCTION[4:8])
    # two events: the consumers app's distribution and the contract's execution
    kinds = [e["type"] for e in events_since(before)]
    assert kinds == ["community.certificates_distributed", "contract.executed"]
    executed = events_since(before)[-1]
    assert f"contract:{contract.pk}" in executed["subject"]
    assert f"community:{world.community.pk}" in executed["subject"]
    assert f"community_distribution:{distribution.pk}" in executed["subject"]
    for m in world.members:
        assert f"organisation:{m.organisation_id}" in executed["subject"]
    assert replay_contracts().ok


def test_a_period_runs_once_and_the_periodic_distribution_does_not_repeat_it(world):
    # given
    contract = active(world, granularity="day")
    trigger = f"day:{DAY:%Y-%m-%d}"
    first = services.contract_execute(contract_id=contract.pk, trigger=trigger)
    assert first.status == "applied"
    assert [dt.datetime.fromisoformat(row["hour"]) for row in first.result["hours"]] == [
        DAY + dt.timedelta(hours=h) for h in range(HOURS)
    ]
    holdings = [held(m.account_id) for m in world.members]
    before = last_event_id()

    # when the same day runs again, and the consumers' periodic run passes
    again = services.contract_execute(contract_id=contract.pk, trigger=trigger)
    consumers.community_certificates_distribute_due()

    # then nothing moved and nothing was written
    assert again is None
    assert [held(m.account_id) for m in world.members] == holdings
    assert ContractExecution.objects.count() == 1
    assert CommunityDistribution.objects.count() == HOURS
    assert events_since(before) == []


def test_the_dry_run_shows_the_period_without_writing(world):
    # given
    contract = active(world)
    before = last_event_id()

    # when
    out = services.contract_dry_run(contract_id=contract.pk)

    # then: the next period is the contract's first whole hour; nothing written
    assert out["trigger"] == f"hour:{START:%Y-%m-%dT%H}:00"
    out = services.contract_dry_run(contract_id=contract.pk, period=f"{DAY:%Y-%m-%dT%H}:00")
    assert out["trigger"] == hour_trigger(0)
    assert out["would_do"]["held_wh"] == sum(PRODUCTION[0:4])
    assert out["would_do"]["already_distributed"] == []
    assert (out["would_fail"], out["executed"]) == (None, None)
    assert events_since(before) == []
    assert not CommunityDistribution.objects.exists()
    with pytest.raises(errors.InvalidTerms):
        services.contract_dry_run(contract_id=contract.pk, period=f"{DAY:%Y-%m-%d}")


def test_a_membership_changed_after_agreement_parks_the_period_and_moves_nothing(world):
    # given: a member leaves inside the hour after everyone agreed
    contract = active(world)
    consumers.community_member_leave(
        actor=world.admins[0], member_id=world.members[0].pk, left_at=DAY + QUARTER * 2
    )

    # when
    out = services.contract_dry_run(contract_id=contract.pk, period=f"{DAY:%Y-%m-%dT%H}:00")
    execution = services.contract_execute(contract_id=contract.pk, trigger=hour_trigger(0))

    # then
    assert out["would_fail"]["code"] == "membership_changed"
    assert (execution.status, execution.reason_code) == ("parked", "membership_changed")
    assert held(world.operator_account.pk) == sum(PRODUCTION)
    assert not CommunityDistribution.objects.exists()
    assert replay_contracts().ok


def test_a_changed_key_parks_the_period(world):
    # given
    contract = active(world)
    consumers.community_key_set(
        actor=world.operator,
        community_id=world.community.pk,
        key_kind="static",
        shares={world.members[0].pk: "1/2", world.members[1].pk: "1/2"},
    )

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=hour_trigger(0))

    # then
    assert (execution.status, execution.reason_code) == ("parked", "allocation_key_changed")
    assert not CommunityDistribution.objects.exists()


def test_a_period_without_certificates_is_refused_with_its_reason(world):
    # given: hour 5 has neither readings nor certificates
    contract = active(world, granularity="hour")
    contract.on_failure = "retry"
    contract.save(update_fields=["on_failure"])

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=hour_trigger(5))

    # then
    assert (execution.status, execution.reason_code) == ("failed", "no_certificates")
    assert "readings_incomplete" in execution.reason_detail
    assert held(world.operator_account.pk) == sum(PRODUCTION)


def test_the_calendar_tick_runs_each_finished_period_once(world):
    # given a daily contract from the day before the issued hours
    contract = active(world, granularity="day")

    # when the tick runs twice
    contracts_calendar_tick_task()
    count = ContractExecution.objects.filter(contract=contract).count()
    contracts_calendar_tick_task()

    # then every finished day has one execution: the issued day applied, the others
    # refused for want of certificates; the second tick added nothing
    executions = {e.trigger: e for e in ContractExecution.objects.filter(contract=contract)}
    assert len(executions) == count
    first = dt.datetime.combine(START.date(), dt.time(0), tzinfo=dt.UTC)
    assert f"day:{first:%Y-%m-%d}" in executions
    applied = executions.pop(f"day:{DAY:%Y-%m-%d}")
    assert applied.status == "applied"
    assert {(e.status, e.reason_code) for e in executions.values()} == {
        ("parked", "no_certificates")
    }
    assert CommunityDistribution.objects.count() == HOURS


# ----------------------------------------------------------------------------------- replay


def test_a_period_whose_result_is_not_the_distribution_is_caught_by_the_replay(world):
    # given an applied hour, whose event and row are then both rewritten to give the
    # second member one Wh more than the distribution did
    contract = active(world)
    execution = services.contract_execute(contract_id=contract.pk, trigger=hour_trigger(0))
    assert replay_contracts().ok
    pending, event = next(
        (row, json.loads(bytes(row.event)))
        for row in PendingEvent.objects.filter(kind="contract.executed")
    )
    key = str(world.members[1].pk)
    event["data"]["result"]["hours"][0]["members"][key] += 1
    PendingEvent.objects.filter(pk=pending.pk).update(event=canonical_bytes(event))
    ContractExecution.objects.filter(pk=execution.pk).update(result=event["data"]["result"])

    # when
    report = replay_contracts()

    # then: the hour no longer adds up, and it is not the distribution its event names
    assert any("does not add up" in p for p in report.problems), report.problems
    assert any("the distribution's event says" in p for p in report.problems), report.problems


def test_the_consumers_periodic_run_leaves_a_community_under_contract_to_it(world):
    # given an active sharing contract
    contract = active(world, granularity="day")

    # when the consumers' periodic distribution runs
    runs = consumers.community_certificates_distribute_due()

    # then it left the community alone
    assert [(run.community_id, run.refused) for run in runs] == [
        (world.community.pk, "distributed_by_contract")
    ]
    assert not CommunityDistribution.objects.exists()

    # when the contract has expired, it distributes the community again
    services.contract_expire_due(now=END)
    contract.refresh_from_db()
    assert contract.status == "expired"
    runs = consumers.community_certificates_distribute_due(days=8)

    # then
    assert {run.refused for run in runs} == {""}
    assert CommunityDistribution.objects.count() == HOURS
