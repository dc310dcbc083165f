"""The share contracts of one issuance executed together (contracts.services.group): the
same results as one execution at a time, a refusal confined to its contract, once each,
and the ledger replays them."""

import datetime as dt

import pytest
from django.db import connection

from accounts.models import Account
from certificates import services as certificates_services
from certificates.models import Bundle
from certificates.replay import replay_ledger
from certificates.services import common as certificates_common
from contracts import selectors, services
from contracts.kinds import shares
from contracts.models import Contract, ContractExecution, SettlementObligation
from contracts.replay_executions import replay_contracts
from contracts.tasks import contracts_execute_issuance_task
from ledger.models import PendingEvent
from ledger.services import ledger_integrate
from market.models import JournalEntry
from tests.certificates.conftest import run_together
from tests.certificates.factories import DAY
from tests.contracts.conftest import (
    END,
    START,
    build_world,
    issue,
    make_forward,
    make_ppa,
    ppa_terms,
)
from tests.factories import AccountFactory, OrganisationFactory
from tests.market.factories import deposit

pytestmark = pytest.mark.django_db


def held(account) -> int:
    rows = Bundle.objects.filter(account=account, status=Bundle.Status.ACTIVE)
    return sum(b.unit_end - b.unit_start for b in rows)


def a_world():
    """`build_world` with readings that vary more from hour to hour."""
    return build_world(wh=lambda i: 1_001 + 37 * i)


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
        execution.result.get("periods"),
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


def units(account, issuance) -> list[tuple[int, int]]:
    """The account's active units of the issuance, counted from the issuance's first."""
    rows = Bundle.objects.filter(issuance=issuance)
    first = min(rows.values_list("unit_start", flat=True))
    held = rows.filter(account=account, status=Bundle.Status.ACTIVE).order_by("unit_start")
    return [(b.unit_start - first, b.unit_end - first) for b in held]


def test_the_group_cuts_each_bundle_once_for_every_receiver(monkeypatch):
    # given: two identical worlds; in both the seller moved 40% of the first hour away
    # before the executions, so the standing transfer (last, 25%) is short of that hour
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    one, together = a_world(), a_world()
    singles, _ = three_contracts(one)
    grouped, accounts = three_contracts(together)
    issuances = []
    for world in (one, together):
        issuance = issue(world, hours=6)
        first_hour = Bundle.objects.filter(issuance=issuance).order_by("period_start").first()
        stranger = AccountFactory(organisation=OrganisationFactory())
        certificates_services.certificate_transfer(
            actor=world.seller,
            bundle_id=first_hour.pk,
            to_account_id=stranger.pk,
            volume_wh=first_hour.volume_wh * 4 // 10,
        )
        issuances.append(issuance)
    before = PendingEvent.objects.order_by("-pk").values_list("pk", flat=True).first()

    # when: the first world one contract at a time, the second as a group
    for contract in singles:
        services.contract_execute(contract_id=contract.pk, trigger=f"issuance:{issuances[0].pk}")
    services.contracts_execute_issuance(issuance_id=issuances[1].pk)

    # then: the same outcomes, the short contract refused and the others applied and paid
    assert [outcome(c) for c in grouped] == [outcome(c) for c in singles]
    failed = ContractExecution.objects.get(contract=grouped[2])
    assert (failed.reason_code, failed.result) == ("execution_shortfall", {})
    assert [outcome(c)[0] for c in grouped[:2]] == ["applied", "applied"]
    assert [outcome(c)[3][1] for c in grouped[:2]] == ["settled", "settled"]
    # every receiver holds the same units as after one execution at a time
    single_accounts = [
        Account.objects.get(number=c.terms.get("buyer_account") or c.terms.get("to_account"))
        for c in singles
    ]
    assert [units(a, issuances[1]) for a in accounts] == [
        units(a, issuances[0]) for a in single_accounts
    ]
    # the group's transfers: one cut event, each later hour bundle split once
    grouped_events = [
        e.kind
        for e in PendingEvent.objects.filter(pk__gt=before)
        if f"account:{together.seller_account.pk}" in e.subjects
    ]
    assert grouped_events.count("certificate.cut_transferred") == 1
    assert grouped_events.count("certificate.batch_transferred") == 0
    roots = Bundle.objects.filter(issuance=issuances[1], parent__isnull=True)
    for root in roots.order_by("period_start")[1:]:
        assert Bundle.objects.filter(parent=root).count() == 3  # 2 applied parts, the rest


def test_a_cut_larger_than_a_batch_goes_in_runs_of_whole_bundles(world, monkeypatch):
    # given: at most 4 parts a cut, three contracts on six hours (18 parts)
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    monkeypatch.setattr(certificates_services, "MAX_BATCH_ITEMS", 4)
    contracts, accounts = three_contracts(world)
    issuance = issue(world, hours=6)

    # when
    services.contracts_execute_issuance(issuance_id=issuance.pk)

    # then: six cuts of one hour's three parts, every contract applied with its 6 transfers
    kinds = list(PendingEvent.objects.values_list("kind", flat=True))
    assert kinds.count("certificate.cut_transferred") == 6
    for contract, account in zip(contracts, accounts, strict=True):
        status, _periods, volume, _paid = outcome(contract)
        result = ContractExecution.objects.get(contract=contract).result
        assert (status, held(account), result["transfer_ids"][2]) == ("applied", volume, 6)
    ledger_integrate()
    assert replay_ledger().ok


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


def test_issued_and_live_reads_what_issued_into_and_live_bundles_read(monkeypatch):
    # given an issuance of 4 hours: one hour split by a contract cut, one root moved whole
    # to the buyer (so the issuance's first holder is still the seller), one moved back
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    world = a_world()
    issuance = issue(world, hours=4)
    roots = list(Bundle.objects.filter(issuance=issuance).order_by("period_start"))
    own = AccountFactory(organisation=world.seller_account.organisation)
    seller = world.seller
    certificates_services.certificate_transfer(
        actor=seller, bundle_id=roots[0].pk, to_account_id=own.pk, volume_wh=100
    )
    certificates_services.certificate_transfer(
        actor=seller, bundle_id=roots[1].pk, to_account_id=own.pk
    )
    certificates_services.certificate_transfer(
        actor=seller, bundle_id=roots[2].pk, to_account_id=own.pk
    )
    certificates_services.certificate_transfer(
        actor=seller, bundle_id=roots[2].pk, to_account_id=world.seller_account.pk
    )

    # when both ways read it, for each account
    for account in (world.seller_account, own, world.buyer_account):
        base, live = shares.issued_and_live(account.pk, issuance.pk)

        # then they agree
        assert base == shares.issued_into(account.pk, issuance.pk)
        assert live == shares.live_bundles(account.pk, issuance.pk)
    base, live = shares.issued_and_live(world.seller_account.pk, issuance.pk)
    assert len(base) == 4 and sum(len(v) for v in live.values()) == 3


def test_share_contracts_in_force_are_the_share_groups_share_group_reads(monkeypatch):
    # given on the seller's account: an active PPA (activated the instant the issuance was
    # made) and standing transfer, a draft PPA, a PPA ended a microsecond after the
    # issuance and one ended at its instant; and a PPA of another plant on another account
    monkeypatch.setattr(certificates_common, "ISSUED_HOOKS", [])
    world = a_world()
    own = AccountFactory(organisation=world.seller_account.organisation)
    ppa, forward = make_ppa(world, share_bp=2_000), make_forward(world, own, 1_000)
    make_ppa(world, active=False, share_bp=1_000)
    ended_later, ended_before = make_ppa(world, share_bp=500), make_ppa(world, share_bp=500)
    elsewhere = build_world()
    make_ppa(elsewhere)
    issuance = issue(world)
    for contract, ended_at in (
        (ended_later, issuance.issued_at + dt.timedelta(microseconds=1)),
        (ended_before, issuance.issued_at),  # ended at that instant: no longer in force
    ):
        Contract.objects.filter(pk=contract.pk).update(status="terminated", ended_at=ended_at)
    Contract.objects.filter(pk=ppa.pk).update(activated_at=issuance.issued_at)  # in force

    # when the group reads them in one statement
    in_force = selectors.share_contracts_in_force(issuance=issuance)

    # then: the contracts in force at the issuance, each one's share group as
    # `share_group` reads it, and only the active ones execute
    assert [c.pk for c in in_force] == [ppa.pk, forward.pk, ended_later.pk]
    for contract in in_force:
        assert shares.share_group_among(in_force, contract) == shares.share_group(
            contract, issuance.device_id, issuance.issued_at
        )
    assert [c.pk for c in in_force if c.status == "active"] == [ppa.pk, forward.pk]
