"""Shaped PPAs: a fixed baseload or 24-hour profile of a device's output each hour, taken
in contract order, the shortfall recorded, never mixed with share contracts, replayed."""

import datetime as dt

import pytest

from certificates.models import Bundle
from contracts import services
from contracts.kinds.shape import wanted_wh
from contracts.kinds.shares import PPA, PPA_SHAPED
from contracts.models import ContractExecution, SettlementObligation
from contracts.replay_executions import replay_contracts
from contracts.replay_pricing import PricingReplay
from contracts.tasks import contracts_execute_issuance_task
from registry.errors import Conflict
from tests.certificates.factories import DAY
from tests.conftest import client_for
from tests.contracts.conftest import END, START, issue, make_ppa, ppa_terms
from tests.contracts.indexed_world import cleared_market, index_terms
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def held(account) -> int:
    rows = Bundle.objects.filter(account=account, status=Bundle.Status.ACTIVE)
    return sum(b.unit_end - b.unit_start for b in rows)


def shaped_terms(world, shape, **overrides) -> dict:
    terms = ppa_terms(world, shape=shape, **overrides)
    del terms["share_bp"]
    return terms


def make_shaped(world, shape, *, active=True, **overrides):
    contract = services.contract_create(
        actor=world.seller, kind=PPA_SHAPED, terms=shaped_terms(world, shape, **overrides),
        start_at=START, end_at=END,
    )  # fmt: skip
    if active:
        services.contract_agree(actor=world.seller, contract_id=contract.pk)
        services.contract_agree(actor=world.buyer, contract_id=contract.pk)
        contract.refresh_from_db()
    return contract


def test_a_baseload_takes_the_same_wh_each_hour_and_pays_for_it(world):
    # given: 600 Wh every hour at 50.00/MWh; the device made 1,001 / 1,002 / 1,003 Wh
    contract = make_shaped(world, {"baseload_wh": 600})
    issuance = issue(world, hours=3)

    # when
    contracts_execute_issuance_task(issuance.pk)

    # then
    execution = ContractExecution.objects.get(contract=contract)
    assert execution.status == "applied"
    assert [p[2] for p in execution.result["periods"]] == [600, 600, 600]
    assert [r[2:] for r in execution.result["shape"]] == [[600, 600]] * 3
    assert execution.result["shortfall_wh"] == 0
    assert held(world.buyer_account) == 1_800
    assert held(world.seller_account) == issuance.volume_wh - 1_800
    obligation = SettlementObligation.objects.get(execution=execution)
    assert obligation.amount_minor == (1_800 * 5_000 + 500_000) // 1_000_000  # 9
    assert replay_contracts().ok


def test_an_hourly_profile_takes_what_was_produced_and_records_the_shortfall(world):
    # given: the UTC hours of DAY 0, 1, 2 want 2,000, 500 and 0 Wh
    profile = [2_000, 500] + [0] * 22
    contract = make_shaped(world, {"hourly_wh": profile})
    issuance = issue(world, hours=3)
    dry = services.contract_dry_run(contract_id=contract.pk, period=DAY.strftime("%Y-%m"))

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
    )

    # then: hour 0 only 1,001 Wh were produced; hour 2 wanted nothing
    assert [p[2] for p in execution.result["periods"]] == [1_001, 500]
    assert [r[2:] for r in execution.result["shape"]] == [[2_000, 1_001], [500, 500], [0, 0]]
    assert execution.result["shortfall_wh"] == 999
    assert execution.result["obligation"]["volume_wh"] == 1_501
    assert (dry["would_do"]["volume_wh"], dry["would_do"]["shortfall_wh"]) == (1_501, 999)


def test_two_shapes_on_one_output_take_in_contract_order(world):
    # given
    other = AccountFactory(organisation=world.buyer_account.organisation)
    first = make_shaped(world, {"baseload_wh": 800})
    second = make_shaped(world, {"baseload_wh": 800}, buyer_account=other.number)
    issuance = issue(world, hours=2)

    # when
    contracts_execute_issuance_task(issuance.pk)

    # then: the first takes 800 an hour, the second what is left (201, 202)
    result = ContractExecution.objects.get(contract=second).result
    assert [p[2] for p in result["periods"]] == [201, 202]
    assert result["shortfall_wh"] == 599 + 598
    assert (held(world.buyer_account), held(other)) == (1_600, 403)
    assert held(world.seller_account) == 0
    assert first.pk < second.pk
    assert replay_contracts().ok


def test_a_shape_and_a_share_never_claim_one_output_together(world):
    # given
    shaped = make_shaped(world, {"baseload_wh": 100})

    # then: a pay-as-produced PPA on the same output is refused, and the other way round
    with pytest.raises(Conflict) as refused:
        make_ppa(world)
    assert refused.value.code == "overlapping_claims"
    assert refused.value.extra == {"scope": "shape", "contract_id": shaped.pk}
    services.contract_terminate(actor=world.seller, contract_id=shaped.pk)
    services.contract_agree(actor=world.buyer, contract_id=shaped.pk)
    services.contract_agree(actor=world.seller, contract_id=shaped.pk)
    share = make_ppa(world)
    with pytest.raises(Conflict) as refused:
        make_shaped(world, {"baseload_wh": 100})
    assert refused.value.extra == {"scope": "shape", "contract_id": share.pk}


@pytest.mark.parametrize(
    "shape, field, code",
    [
        (None, "shape", "invalid_terms"),
        ({"baseload_wh": 0}, "shape.baseload_wh", "invalid_terms"),
        ({"baseload_wh": 1, "hourly_wh": [1] * 24}, "shape", "invalid_terms"),
        ({"hourly_wh": [1] * 23}, "shape.hourly_wh", "invalid_terms"),
        # the schema allows 24 zeros; "not all 0" is beyond it
        ({"hourly_wh": [0] * 24}, "shape.hourly_wh", "terms_unmet"),
        ({"hourly_wh": [-1] + [1] * 23}, "shape.hourly_wh", "invalid_terms"),
        ({"flat": 5}, "shape.flat", "invalid_terms"),
    ],
)
def test_bad_shapes_are_refused_up_front_with_the_field(world, shape, field, code):
    # when
    terms = shaped_terms(world, shape)
    response = client_for(world.seller).post(
        "/api/v1/contracts/",
        {
            "kind": PPA_SHAPED,
            "terms": terms,
            "start_at": START.isoformat(),
            "end_at": END.isoformat(),
        },
        format="json",
    )

    # then
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert field in response.json()["extra"]["fields"]


def test_a_shape_has_no_share_and_a_share_no_shape(world):
    with pytest.raises(Exception) as refused:
        services.contract_create(
            actor=world.seller, kind=PPA_SHAPED,
            terms=shaped_terms(world, {"baseload_wh": 1}) | {"share_bp": 100},
            start_at=START, end_at=END,
        )  # fmt: skip
    assert refused.value.extra["fields"] == {"share_bp": ["unknown field"]}
    with pytest.raises(Exception) as refused:
        make_ppa(world, active=False, shape={"baseload_wh": 1})
    assert refused.value.extra["fields"] == {"shape": ["unknown field"]}
    assert PPA != PPA_SHAPED


def test_a_shaped_ppa_indexed_to_the_market_prices_each_hour_it_took(world):
    # given: 500 Wh an hour, indexed (hour 0 at 80.00 - 5.00)
    energy = cleared_market({0: [(8_000, 100)] * 4})
    terms = shaped_terms(world, {"baseload_wh": 500}, price_index=index_terms(energy))
    del terms["price_per_mwh_minor"]
    contract = services.contract_create(
        actor=world.seller, kind=PPA_SHAPED, terms=terms, start_at=START, end_at=END
    )
    services.contract_agree(actor=world.seller, contract_id=contract.pk)
    services.contract_agree(actor=world.buyer, contract_id=contract.pk)
    issuance = issue(world, hours=1)

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
    )

    # then
    assert [r[3] for r in execution.result["index_prices"]] == [7_500]
    assert execution.result["obligation"]["amount_minor"] == 4  # 500 Wh x 75.00 = 3.75
    assert replay_contracts().ok


def test_the_replay_re_derives_the_shape_of_each_period(world):
    # given
    contract = make_shaped(world, {"hourly_wh": [2_000, 500] + [0] * 22})
    issuance = issue(world, hours=3)
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
    )
    result = execution.result
    problems: list[str] = []
    replay = PricingReplay(problems.append)
    replay.shape("ok", contract.terms["shape"], result)
    assert problems == []

    # when: an hour claims to want more, another took more than it wanted
    rows = [list(r) for r in result["shape"]]
    rows[0][2] = 3_000
    rows[1][3] = 600
    replay.shape("bad", contract.terms["shape"], result | {"shape": rows})

    # then: the rows no longer match the periods, the two hours, and the shortfall
    assert len(problems) == 4, problems


def test_a_period_wants_the_shape_pro_rata_to_the_hours_it_covers():
    shape = {"hourly_wh": list(range(1, 25))}
    start = DAY + dt.timedelta(minutes=45)
    assert wanted_wh(shape, start, start + dt.timedelta(minutes=15)) == 0  # 1 Wh / 4
    assert wanted_wh(shape, start, start + dt.timedelta(minutes=75)) == 2  # 0.25 + 2
    assert wanted_wh({"baseload_wh": 600}, DAY, DAY + dt.timedelta(days=1)) == 14_400
