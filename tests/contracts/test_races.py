"""Races on PostgreSQL: two executions of one trigger -> exactly one applies."""

import pytest
from django.db import connection

from certificates.models import Bundle
from certificates.services import common as certificates_common
from contracts import services
from contracts.models import ContractExecution, SettlementObligation
from contracts.replay_executions import replay_contracts
from market.models import JournalEntry
from tests.certificates.conftest import run_together
from tests.contracts.conftest import issue, make_ppa
from tests.contracts.indexed_world import cleared_market
from tests.contracts.test_indexed_ppa import PRICES, indexed_ppa
from tests.contracts.test_shaped_ppa import held, make_shaped
from tests.factories import AccountFactory
from tests.market.factories import deposit

requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and real concurrency need PostgreSQL"
)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_executions_of_one_trigger_apply_exactly_once(world, monkeypatch):
    # given: an issuance whose hook is off, so the threads are the first to execute it
    contract = make_ppa(world, share_bp=5_000)
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    issuance = issue(world, hours=4)
    assert not ContractExecution.objects.exists()
    trigger = f"issuance:{issuance.pk}"

    # when
    results = run_together(
        lambda i: services.contract_execute(contract_id=contract.pk, trigger=trigger), n=8
    )

    # then
    applied = [r for r in results if isinstance(r, ContractExecution)]
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len(applied) == 1 and applied[0].status == "applied"
    assert results.count(None) == 7
    buyer = Bundle.objects.filter(account=world.buyer_account, status=Bundle.Status.ACTIVE)
    assert sum(b.unit_end - b.unit_start for b in buyer) == sum(
        p[2] for p in applied[0].result["periods"]
    )
    assert ContractExecution.objects.filter(contract=contract).count() == 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_never_exceed_100_percent(world):
    # given: four drafts of 40% each, the seller agreed to all
    drafts = [make_ppa(world, active=False, share_bp=4_000) for _ in range(4)]
    for draft in drafts:
        services.contract_agree(actor=world.seller, contract_id=draft.pk)

    # when: the buyer agrees to all four at once
    results = run_together(
        lambda i: services.contract_agree(actor=world.buyer, contract_id=drafts[i].pk), n=4
    )

    # then
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(ok) == 2
    assert {r.code for r in results if isinstance(r, Exception)} == {"overlapping_claims"}


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_executions_of_an_indexed_ppa_price_and_pay_exactly_once(world, monkeypatch):
    # given: a PPA indexed to an energy market that cleared hours 0 and 1, a funded buyer
    energy = cleared_market(PRICES)
    contract = indexed_ppa(world, energy)
    deposit(world.buyer_account.organisation_id, 10_000)
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    issuance = issue(world, hours=3)
    trigger = f"issuance:{issuance.pk}"

    # when
    results = run_together(
        lambda i: services.contract_execute(contract_id=contract.pk, trigger=trigger), n=8
    )

    # then: one execution, one obligation paid once, at the prices the dry run shows
    applied = [r for r in results if isinstance(r, ContractExecution)]
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len(applied) == 1 and results.count(None) == 7
    obligation = SettlementObligation.objects.get(contract=contract)
    assert obligation.status == "settled"
    assert (
        JournalEntry.objects.filter(reference=f"settlement_obligation:{obligation.pk}").count() == 1
    )
    dry = services.contract_dry_run(contract_id=contract.pk, issuance_id=issuance.pk)
    assert dry["would_do"]["obligation"]["amount_minor"] == obligation.amount_minor
    assert applied[0].result["index_prices"] == dry["would_do"]["index_prices"]
    assert replay_contracts().ok


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_executions_of_two_shaped_ppas_on_one_issuance(world, monkeypatch):
    # given: two 600 Wh baseloads on one output (the second gets what is left), hook off
    other = AccountFactory(organisation=world.buyer_account.organisation)
    first = make_shaped(world, {"baseload_wh": 600})
    second = make_shaped(world, {"baseload_wh": 600}, buyer_account=other.number)
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    issuance = issue(world, hours=2)
    trigger = f"issuance:{issuance.pk}"
    contracts = [first, second]

    # when: eight threads, four on each contract
    results = run_together(
        lambda i: services.contract_execute(contract_id=contracts[i % 2].pk, trigger=trigger), n=8
    )

    # then: each contract executed once; the Wh each took are in its buyer's account
    assert [r for r in results if isinstance(r, Exception)] == []
    assert results.count(None) == 6
    for contract, account in ((first, world.buyer_account), (second, other)):
        execution = ContractExecution.objects.get(contract=contract)
        taken = sum(p[2] for p in execution.result.get("periods", []))
        assert (execution.status, held(account)) == ("applied", taken), execution.reason_detail
    assert held(world.buyer_account) == 1_200
    assert held(other) == issuance.volume_wh - 1_200
