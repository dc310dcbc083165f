"""PPAs priced by an energy market's cleared price: validated up front, each hour's price
recorded with the clearings it came from, the same in the dry run, re-derived by the
replay, and a refusal (parked, nothing moved) when an hour has no price at all."""

import json

import pytest

from certificates.models import Bundle
from contracts import services
from contracts.kinds import pricing
from contracts.kinds.shares import PPA
from contracts.models import SettlementObligation
from contracts.replay_executions import replay_contracts
from contracts.replay_pricing import PricingReplay
from ledger.models import PendingEvent
from tests.certificates.factories import DAY
from tests.conftest import client_for
from tests.contracts.conftest import END, START, issue, ppa_terms
from tests.contracts.indexed_world import cleared_market, index_terms
from tests.market.factories import EnergyMarketFactory, deposit

pytestmark = pytest.mark.django_db

# hour 0: four slots at 80.00/MWh; hour 1: two at 100.00 (100 Wh), two at 140.00 (300 Wh)
# -> 130.00 weighted by cleared Wh; hour 2: nothing cleared
PRICES = {0: [(8_000, 100)] * 4, 1: [(10_000, 100)] * 2 + [(14_000, 300)] * 2}


def indexed_terms(world, energy, **index) -> dict:
    terms = ppa_terms(world, share_bp=5_000, price_index=index_terms(energy, **index))
    del terms["price_per_mwh_minor"]
    return terms


def indexed_ppa(world, energy, **index):
    contract = services.contract_create(
        actor=world.seller, kind=PPA, terms=indexed_terms(world, energy, **index),
        start_at=START, end_at=END,
    )  # fmt: skip
    services.contract_agree(actor=world.seller, contract_id=contract.pk)
    services.contract_agree(actor=world.buyer, contract_id=contract.pk)
    return contract


def test_each_hour_is_priced_at_the_index_plus_spread_within_floor_and_cap(world):
    # given: spread -5.00, floor 70.00, cap 120.00, fallback index 60.00; the buyer funded
    energy = cleared_market(PRICES)
    contract = indexed_ppa(world, energy)
    deposit(world.buyer_account.organisation_id, 10_000)
    issuance = issue(world, hours=3)

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
    )

    # then: hour 0 80 - 5 = 75; hour 1 130 - 5 = 125 -> cap 120; hour 2 fallback 60 - 5 -> floor 70
    assert execution.status == "applied", execution.reason_detail
    result = execution.result
    rows = result["index_prices"]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        (8_000, "cleared", 7_500),
        (13_000, "cleared", 12_000),
        (None, "fallback", 7_000),
    ]
    assert [len(r[4]) for r in rows] == [4, 4, 0]
    assert rows[1][4][2][1:] == [14_000, 300, 900]  # [clearing id, price, Wh, overlap s]
    assert result["index_market_id"] == energy.pk
    wh = [p[2] for p in result["periods"]]
    amount = (wh[0] * 7_500 + wh[1] * 12_000 + wh[2] * 7_000 + 500_000) // 1_000_000
    obligation = SettlementObligation.objects.get(execution=execution)
    assert (obligation.amount_minor, obligation.volume_wh, obligation.status) == (
        amount,
        sum(wh),
        "settled",
    )
    assert result["obligation"]["price_per_mwh_minor"] is None
    # the ledger event carries the inputs: every clearing with each hour's index and price
    event = json.loads(
        bytes(PendingEvent.objects.filter(kind="contract.executed").latest("pk").event)
    )
    assert event["data"]["result"]["index_prices"] == rows
    # and the dry run of the issuance and of the month show the same prices and amount
    dry = services.contract_dry_run(contract_id=contract.pk, issuance_id=issuance.pk)
    assert dry["would_do"]["index_prices"] == rows
    month = services.contract_dry_run(contract_id=contract.pk, period=DAY.strftime("%Y-%m"))
    assert month["would_do"]["amount_minor_estimate"] == amount
    assert month["would_fail"] is None
    # and through the API, as the buyer reads it
    response = client_for(world.buyer).get(
        f"/api/v1/contracts/{contract.pk}/dry-run/", {"issuance": issuance.pk}
    )
    assert response.status_code == 200, response.content
    assert [r[3] for r in response.json()["would_do"]["index_prices"]] == [7_500, 12_000, 7_000]
    assert response.json()["executed"] == "applied"


def test_an_hour_without_a_cleared_price_and_no_fallback_parks_the_execution(world):
    # given: no fallback, and hour 2 cleared nothing
    energy = cleared_market(PRICES)
    contract = indexed_ppa(world, energy, fallback_per_mwh_minor=None)
    assert "fallback_per_mwh_minor" not in contract.terms["price_index"]
    issuance = issue(world, hours=3)
    dry = services.contract_dry_run(contract_id=contract.pk, issuance_id=issuance.pk)
    assert dry["would_fail"]["code"] == "index_price_unavailable"

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
    )

    # then: parked with the reason, nothing moved, no obligation
    assert (execution.status, execution.reason_code) == ("parked", "index_price_unavailable")
    assert not Bundle.objects.filter(account=world.buyer_account).exists()
    assert not SettlementObligation.objects.exists()
    assert replay_contracts().ok


# terms_unmet: what the schema cannot state (the registry's markets, one field against another)
@pytest.mark.parametrize(
    "change, field, code",
    [
        ({"price_per_mwh_minor": 5_000}, "price_per_mwh_minor", "invalid_terms"),  # both
        ({"price_index": None}, "price_per_mwh_minor", "invalid_terms"),  # neither
        ({"price_index": "energy"}, "price_index", "invalid_terms"),
        ({"price_index": {"market": "no-such-market"}}, "price_index.market", "terms_unmet"),
        ({"price_index": {"market": "@", "floor": 1}}, "price_index.floor", "invalid_terms"),
        ({"cap_per_mwh_minor": 6_000}, "price_index.cap_per_mwh_minor", "terms_unmet"),
        ({"spread_per_mwh_minor": 10**9}, "price_index.spread_per_mwh_minor", "invalid_terms"),
        ({"floor_per_mwh_minor": -1}, "price_index.floor_per_mwh_minor", "invalid_terms"),
        ({"currency": "SEK"}, "price_index.market", "terms_unmet"),  # the market trades in EUR
    ],
)
def test_bad_index_terms_are_refused_up_front_with_the_field(world, change, field, code):
    # given
    energy = EnergyMarketFactory(currency="EUR")
    terms = indexed_terms(world, energy)
    for name, value in change.items():
        if name in ("price_per_mwh_minor", "price_index", "currency"):
            terms[name] = value
        else:
            terms["price_index"][name] = value
    if terms.get("price_index") is None:
        terms.pop("price_index", None)

    # when
    response = client_for(world.seller).post(
        "/api/v1/contracts/",
        {"kind": PPA, "terms": terms, "start_at": START.isoformat(), "end_at": END.isoformat()},
        format="json",
    )

    # then
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code
    assert field in body["extra"]["fields"], body


def test_the_replay_re_derives_each_price_from_the_recorded_clearings(world):
    # given: an applied indexed execution
    energy = cleared_market(PRICES)
    contract = indexed_ppa(world, energy)
    issuance = issue(world, hours=3)
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
    )
    assert replay_contracts().ok
    result = execution.result

    # when: a recorded price, a recorded clearing's price, and the floor are changed
    problems: list[str] = []
    replay = PricingReplay(problems.append)
    for event in PendingEvent.objects.filter(kind="market.slot_cleared"):
        replay.slot_cleared(json.loads(bytes(event.event))["data"])
    tampered = result | {"index_prices": [list(r) for r in result["index_prices"]]}
    tampered["index_prices"][0][3] = 9_999
    tampered["index_prices"][1][4] = [
        [c[0], c[1] + 1, c[2], c[3]] for c in result["index_prices"][1][4]
    ]
    replay.expected("a", contract.terms, tampered)
    lower_floor = contract.terms | {
        "price_index": contract.terms["price_index"] | {"floor_per_mwh_minor": 0}
    }
    replay.expected("b", lower_floor, result)
    replay.settle()

    # then: hour 0's price, hour 1's index and its four clearings, hour 2's floor
    assert len([p for p in problems if p.startswith("a: period")]) == 2
    assert len([p for p in problems if p.startswith("a: clearing")]) == 4
    assert len([p for p in problems if p.startswith("b: period")]) == 1
    # and the amount the execution recorded is what the terms give
    assert replay.expected("c", contract.terms, result)[0] == result["obligation"]["amount_minor"]


def test_the_index_value_is_the_cleared_wh_and_time_weighted_mean_half_up():
    assert pricing.index_value([]) is None
    assert pricing.index_value([[1, 100, 1, 900], [2, 101, 1, 900]]) == 101  # 100.5 -> 101
    assert pricing.index_value([[1, 100, 3, 900], [2, 200, 1, 900]]) == 125
    index = {"spread_per_mwh_minor": 0, "floor_per_mwh_minor": 0}
    assert pricing.indexed_price(index, None) is None
    assert pricing.indexed_price(index | {"fallback_per_mwh_minor": 5}, None) == 5
