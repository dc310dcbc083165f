"""The share contracts of one issuance executed together (contracts.services.group): the
same results as one execution at a time, a refusal confined to its contract, once each,
and the ledger replays them."""

import datetime as dt
from fractions import Fraction
from types import SimpleNamespace

import pytest
from django.db import connection

from accounts.models import Account, Membership
from certificates.models import Bundle
from certificates.replay import replay_ledger
from certificates.services import common as certificates_common
from contracts import services
from contracts.models import ContractExecution, SettlementObligation
from contracts.replay_executions import replay_contracts
from contracts.tasks import contracts_execute_issuance_task
from ledger.models import PendingEvent
from ledger.services import ledger_integrate
from market.models import JournalEntry
from tests.certificates.conftest import run_together
from tests.certificates.factories import DAY, add_readings, device_with_owners, holder
from tests.contracts.conftest import END, START, issue, make_forward, make_ppa, ppa_terms
from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user
from tests.market.factories import deposit

pytestmark = pytest.mark.django_db


def held(account) -> int:
    rows = Bundle.objects.filter(account=account, status=Bundle.Status.ACTIVE)
    return sum(b.unit_end - b.unit_start for b in rows)


def a_world():
    """Like the `world` fixture: a sole-owner plant with a day of readings, a buyer."""
    device, (seller_account,) = device_with_owners([Fraction(1)])
    add_readings(device, hours=24, wh=lambda i: 1_001 + 37 * i)
    buyer_account = AccountFactory(
        organisation=OrganisationFactory(legal_name="Buyer AG", is_producer=False)
    )
    return SimpleNamespace(
        device=device,
        seller_account=seller_account,
        buyer_account=buyer_account,
        seller=holder(seller_account, Membership.Role.ADMIN),
        buyer=holder(buyer_account, Membership.Role.ADMIN),
        ib=issuing_body_user(),
    )


def three_contracts(world):
    """Two PPAs (40% and 15%, to two accounts of the funded buyer) and a 25% standing
    transfer to the seller's own second account, all on one output."""
    deposit(world.buyer_account.organisation_id, 100_000)
    other = AccountFactory(organisation=world.buyer_account.organisation)
    own = AccountFactory(organisation=world.seller_account.organisation)
    contracts = [
        make_ppa(world, share_bp=4_000, price_per_mwh_minor=7_300),
        make_ppa(world, share_bp=1_500, buyer_account=other.number),
        make_forward(world, own, 2_500),
    ]
    return contracts, [world.buyer_account, other, own]


def outcome(contract) -> tuple:
    execution = ContractExecution.objects.get(contract=contract)
    obligation = SettlementObligation.objects.filter(execution=execution).first()
    return (
        execution.status,
        execution.result["periods"],
        execution.result.get("volume_wh"),
        None if obligation is None else (obligation.amount_minor, obligation.status),
    )


def test_the_group_gives_each_contract_what_one_execution_at_a_time_gives(monkeypatch):
    # given: two identical worlds, the issuance hook off
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    one, together = a_world(), a_world()
    singles, _ = three_contracts(one)
    grouped, accounts = three_contracts(together)
    first, second = issue(one, hours=6), issue(together, hours=6)

    # when: the first world one contract at a time, the second as a group
    for contract in singles:
        services.contract_execute(contract_id=contract.pk, trigger=f"issuance:{first.pk}")
    executions = services.contracts_execute_issuance(issuance_id=second.pk)

    # then: the same periods, volumes, amounts and payments, contract by contract
    assert [e.contract_id for e in executions] == [c.pk for c in grouped]
    assert [outcome(c) for c in grouped] == [outcome(c) for c in singles]
    assert [outcome(c)[3][1] for c in grouped[:2]] == ["settled", "settled"]
    taken = [held(account) for account in accounts]
    assert sum(taken) + held(together.seller_account) == second.volume_wh
    assert taken == [sum(p[2] for p in outcome(c)[1]) for c in grouped]
    # one contract.executed per contract, each naming the issuance
    executed = PendingEvent.objects.filter(kind="contract.executed").values_list("subjects")
    assert [f"issuance:{second.pk}" in subjects for (subjects,) in executed].count(True) == 3


def test_a_refused_contract_is_recorded_and_the_others_apply(world, monkeypatch):
    # given: the standing transfer's receiving account is closed
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    (first, second, forward), (buyer, other, own) = three_contracts(world)
    Account.objects.filter(pk=own.pk).update(status=Account.Status.CLOSED)
    issuance = issue(world, hours=4)

    # when
    contracts_execute_issuance_task(issuance.pk)

    # then: the transfer failed with the certificates service's reason, nothing moved to
    # the closed account, and both PPAs applied and were paid
    failed = ContractExecution.objects.get(contract=forward)
    assert (failed.status, failed.reason_code, failed.result) == ("parked", "account_closed", {})
    assert held(own) == 0
    for contract, account in ((first, buyer), (second, other)):
        status, _periods, volume, paid = outcome(contract)
        assert (status, held(account), paid[1]) == ("applied", volume, "settled")
    assert held(world.seller_account) == issuance.volume_wh - held(buyer) - held(other)
    kinds = list(PendingEvent.objects.values_list("kind", flat=True))
    assert kinds.count("contract.executed") == 2
    assert kinds.count("contract.execution_failed") == 1
    assert kinds.count("settlement.paid") == 2


def test_a_group_executes_each_trigger_once(world, django_capture_on_commit_callbacks):
    # given: the hook ran the group on commit of the issuance
    three_contracts(world)
    with django_capture_on_commit_callbacks(execute=True):
        issuance = issue(world, hours=2)
    assert ContractExecution.objects.filter(status="applied").count() == 3
    before = (PendingEvent.objects.count(), Bundle.objects.count())

    # when: the task again, and a single execution of one of them
    again = contracts_execute_issuance_task(issuance.pk)
    contract_id = ContractExecution.objects.first().contract_id
    single = services.contract_execute(contract_id=contract_id, trigger=f"issuance:{issuance.pk}")

    # then
    assert (again, single) == (0, None)
    assert (PendingEvent.objects.count(), Bundle.objects.count()) == before


def test_the_ledger_replays_grouped_executions(world, django_capture_on_commit_callbacks):
    # given: two issuances executed as groups, one with a refused contract
    (_first, _second, forward), (_buyer, _other, own) = three_contracts(world)
    with django_capture_on_commit_callbacks(execute=True):
        issue(world, hours=3)
    Account.objects.filter(pk=own.pk).update(status=Account.Status.CLOSED)
    with django_capture_on_commit_callbacks(execute=True):
        issue(world, hours=3, start=DAY + dt.timedelta(hours=3))
    Account.objects.filter(pk=own.pk).update(status=Account.Status.OPEN)
    assert ContractExecution.objects.filter(contract=forward, status="parked").count() == 1

    # when
    contracts = replay_contracts()
    ledger_integrate()
    ledger = replay_ledger()

    # then: every execution and obligation re-derived from the events, bundles too
    assert contracts.ok, contracts.problems
    assert contracts.tables["execution"] == 6
    assert contracts.tables["obligation"] == 4
    assert ledger.ok, ledger.problems


requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and real concurrency need PostgreSQL"
)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_groups_of_one_issuance_execute_it_once(monkeypatch):
    # given
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    world = a_world()
    contracts, accounts = three_contracts(world)
    issuance = issue(world, hours=4)

    # when
    results = run_together(
        lambda i: services.contracts_execute_issuance(issuance_id=issuance.pk), n=6
    )

    # then: one thread ran the three executions, the others found them claimed
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 0, 3]
    assert ContractExecution.objects.filter(status="applied").count() == 3
    assert [held(a) for a in accounts] == [outcome(c)[2] for c in contracts]
    assert SettlementObligation.objects.filter(status="settled").count() == 2


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_groups_paying_the_same_buyers_in_opposite_orders_do_not_deadlock(monkeypatch):
    # given: two sellers' plants, each with PPAs to the same two funded buyers, seller A's
    # contracts buyer 1 first, seller B's buyer 2 first; four issuances of each plant
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    one, two = a_world(), a_world()
    deposit(one.buyer_account.organisation_id, 1_000_000)
    deposit(two.buyer_account.organisation_id, 1_000_000)
    for world, buyers in ((one, (one, two)), (two, (two, one))):
        for buyer, share in zip(buyers, (3_000, 2_000), strict=True):
            terms = {"buyer_account": buyer.buyer_account.number, "share_bp": share}
            contract = services.contract_create(
                actor=world.seller,
                kind="ppa_pay_as_produced",
                terms=ppa_terms(world, **terms),
                start_at=START,
                end_at=END,
            )
            services.contract_agree(actor=world.seller, contract_id=contract.pk)
            services.contract_agree(actor=buyer.buyer, contract_id=contract.pk)
    issuances = [
        issue(world, hours=1, start=DAY + dt.timedelta(hours=h))
        for h in range(4)
        for world in (one, two)
    ]

    # when: all eight groups at once
    results = run_together(
        lambda i: services.contracts_execute_issuance(issuance_id=issuances[i].pk), n=8
    )

    # then: no deadlock, every execution applied and paid once
    assert [r for r in results if isinstance(r, Exception)] == []
    assert [len(r) for r in results] == [2] * 8
    assert ContractExecution.objects.filter(status="applied").count() == 16
    assert SettlementObligation.objects.filter(status="settled").count() == 16
    assert JournalEntry.objects.filter(kind="contract_payment").count() == 16
    assert replay_contracts().ok
