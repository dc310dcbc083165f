"""Executions: on issuance the buyer's share moves, once, exactly, with its obligation."""

import datetime as dt
import json

import pytest

from accounts.models import Account
from certificates.models import Bundle
from contracts import services
from contracts.kinds.retirement import STANDING_RETIREMENT
from contracts.models import ContractExecution, SettlementObligation
from contracts.tasks import contracts_execute_issuance_task
from ledger.canonical import to_event_value
from ledger.models import PendingEvent
from registry.errors import Conflict
from tests.certificates.factories import DAY
from tests.contracts.conftest import END, START, issue, make_forward, make_ppa
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def held(account) -> int:
    rows = Bundle.objects.filter(account=account, status=Bundle.Status.ACTIVE)
    return sum(b.unit_end - b.unit_start for b in rows)


def test_issuance_moves_the_buyers_share_and_records_what_is_owed(
    world, django_capture_on_commit_callbacks
):
    # given
    contract = make_ppa(world, share_bp=3_333, price_per_mwh_minor=5_000)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        issuance = issue(world, hours=3)

    # then: 3,333 bp of each hour (1,001 / 1,002 / 1,003 Wh), by largest remainder
    execution = ContractExecution.objects.get(contract=contract)
    assert execution.status == "applied"
    assert execution.trigger == f"issuance:{issuance.pk}"
    periods = execution.result["periods"]
    assert [p[2] for p in periods] == [334, 334, 334]
    assert held(world.buyer_account) == 1_002
    assert held(world.seller_account) + held(world.buyer_account) == issuance.volume_wh
    obligation = SettlementObligation.objects.get(execution=execution)
    # 1,002 Wh at 50.00/MWh = 5.01 minor units -> 5 (half-up)
    assert (obligation.amount_minor, obligation.currency, obligation.status) == (5, "EUR", "open")
    assert obligation.payer_id == world.buyer_account.organisation_id


def test_two_ppas_and_a_standing_transfer_share_each_hour_without_losing_a_wh(world):
    # given: 50% + 25% PPAs to two buyers and the seller forwarding 25% to its own account
    other = AccountFactory(organisation=world.buyer_account.organisation)
    own = AccountFactory(organisation=world.seller_account.organisation)
    first = make_ppa(world, share_bp=5_000)
    second = make_ppa(world, share_bp=2_500, buyer_account=other.number)
    forward = make_forward(world, own, 2_500)
    issuance = issue(world, hours=5)

    # when
    contracts_execute_issuance_task(issuance.pk)

    # then
    assert ContractExecution.objects.filter(status="applied").count() == 3
    totals = [held(a) for a in (world.buyer_account, other, own, world.seller_account)]
    assert sum(totals) == issuance.volume_wh
    assert totals[3] == 0  # 100% shared out
    assert abs(totals[0] - issuance.volume_wh / 2) <= 5
    assert first.pk < second.pk < forward.pk


def test_an_execution_for_a_trigger_already_executed_is_skipped(world):
    # given
    contract = make_ppa(world)
    issuance = issue(world)
    trigger = f"issuance:{issuance.pk}"
    services.contract_execute(contract_id=contract.pk, trigger=trigger)
    kinds = list(PendingEvent.objects.order_by("-pk").values_list("kind", flat=True)[:2])
    assert kinds == ["contract.executed", "certificate.batch_transferred"]
    executed = PendingEvent.objects.order_by("-pk").first()
    assert f"issuance:{issuance.pk}" in executed.subjects
    assert f"organisation:{world.buyer_account.organisation_id}" in executed.subjects
    before = (PendingEvent.objects.count(), held(world.buyer_account))

    # when
    again = services.contract_execute(contract_id=contract.pk, trigger=trigger)

    # then
    assert again is None
    assert (PendingEvent.objects.count(), held(world.buyer_account)) == before


def test_the_same_inputs_give_the_same_result_and_the_dry_run_shows_it(world):
    # given
    contract = make_ppa(world, share_bp=2_718)
    issuance = issue(world, hours=6)
    trigger = f"issuance:{issuance.pk}"

    rows = Bundle.objects.count()

    # when
    dry = services.contract_dry_run(contract_id=contract.pk, issuance_id=issuance.pk)
    rows_after_dry_run = Bundle.objects.count()
    planned = services.contract_plan(contract=contract, trigger=trigger).summary
    execution = services.contract_execute(contract_id=contract.pk, trigger=trigger)
    replanned = services.contract_plan(contract=contract, trigger=trigger).summary

    # then: the dry run wrote nothing; plan, execution and a re-run after it agree
    assert rows_after_dry_run == rows
    assert dry["executed"] is None
    assert dry["would_do"]["periods"] == execution.result["periods"]
    assert planned["periods"] == replanned["periods"]
    assert planned["obligation"] == replanned["obligation"]


def test_a_months_dry_run_after_whole_bundles_moved_still_shows_what_was_taken(world):
    # given: the seller forwards all of its new certificates, so each hour's bundle moves
    # whole (the row stays, its account changes) rather than being split
    own = AccountFactory(organisation=world.seller_account.organisation)
    forward = make_forward(world, own, 10_000)
    issuance = issue(world, hours=4)
    month = DAY.strftime("%Y-%m")
    before = services.contract_dry_run(contract_id=forward.pk, period=month)["would_do"]

    # when
    contracts_execute_issuance_task(issuance.pk)
    after = services.contract_dry_run(contract_id=forward.pk, period=month)["would_do"]
    replanned = services.contract_plan(contract=forward, trigger=f"issuance:{issuance.pk}")

    # then: every Wh moved whole, and the month still shows what the contract took
    assert held(own) == issuance.volume_wh and held(world.seller_account) == 0
    assert Bundle.objects.filter(account=own, parent__isnull=True).count() == 4
    assert after["volume_wh"] == before["volume_wh"] == issuance.volume_wh
    assert after["periods"] == before["periods"]
    executed = ContractExecution.objects.get().result["periods"]
    assert to_event_value(replanned.summary["periods"]) == executed


def test_a_closed_buyer_account_parks_the_execution_with_its_reason_and_nothing_moves(world):
    # given
    contract = make_ppa(world)
    issuance = issue(world)
    Account.objects.filter(pk=world.buyer_account.pk).update(status=Account.Status.CLOSED)
    bundles = list(Bundle.objects.order_by("pk").values_list("pk", "account_id", "status"))

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
    )

    # then
    assert (execution.status, execution.reason_code) == ("parked", "account_closed")
    assert list(Bundle.objects.order_by("pk").values_list("pk", "account_id", "status")) == bundles
    assert not SettlementObligation.objects.exists()
    assert PendingEvent.objects.order_by("-pk").first().kind == "contract.execution_failed"

    # when the account reopens, a party retries it
    Account.objects.filter(pk=world.buyer_account.pk).update(status=Account.Status.OPEN)
    retried = services.contract_execution_retry(actor=world.buyer, execution_id=execution.pk)

    # then
    assert (retried.status, retried.attempts) == ("applied", 2)
    assert held(world.buyer_account) > 0


def test_units_gone_before_execution_fail_without_half_applying(world):
    # given: the seller retires everything before the contract runs
    contract = make_ppa(world)
    contract.on_failure = "retry"
    contract.save(update_fields=["on_failure"])
    issuance = issue(world, hours=2)
    from certificates import services as certificates

    ids = list(Bundle.objects.filter(account=world.seller_account).values_list("pk", flat=True))
    certificates.certificate_retire(
        actor=world.seller,
        items=[(ids[0], None)],
        beneficiary_name="X",
        beneficiary_country="DE",
        consumption_start=DAY,
        consumption_end=DAY + dt.timedelta(hours=1),
        purpose="disclosure",
    )
    before = held(world.seller_account)

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
    )

    # then: retried later (status failed), nothing of the second hour moved either
    assert (execution.status, execution.reason_code) == ("failed", "execution_shortfall")
    assert held(world.seller_account) == before
    assert held(world.buyer_account) == 0


def test_a_settlement_handler_refusal_leaves_the_obligation_open_with_its_reason(world):
    # given a handler that refuses (as the market does when the buyer's funds are short),
    # after writing something that must be rolled back
    from registry.errors import Conflict

    class InsufficientFunds(Conflict):
        code = "insufficient_funds"

    def handler(obligation):
        Account.objects.filter(pk=world.buyer_account.pk).update(name="written by handler")
        raise InsufficientFunds(amount=obligation.amount_minor)

    contract = make_ppa(world)
    issuance = issue(world)
    handlers = services.SETTLEMENT_HANDLERS[:]
    services.SETTLEMENT_HANDLERS[:] = [handler]
    try:
        # when
        execution = services.contract_execute(
            contract_id=contract.pk, trigger=f"issuance:{issuance.pk}"
        )
    finally:
        services.SETTLEMENT_HANDLERS[:] = handlers

    # then: the certificates moved, the debt is recorded open with the reason, and the
    # handler's write was undone
    assert execution.status == "applied"
    assert held(world.buyer_account) > 0
    obligation = SettlementObligation.objects.get(execution=execution)
    assert (obligation.status, obligation.reason_code) == ("open", "insufficient_funds")
    assert execution.result["obligation"]["reason_code"] == "insufficient_funds"
    world.buyer_account.refresh_from_db()
    assert world.buyer_account.name != "written by handler"


def test_the_ticks_retry_records_a_changed_reason_with_one_event_and_an_unchanged_one_not_at_all(
    world,
):
    # given an obligation left open for lack of funds (no deposit)
    contract = make_ppa(world)
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"issuance:{issue(world).pk}"
    )
    obligation = SettlementObligation.objects.get(execution=execution)
    assert obligation.reason_code == "insufficient_funds"

    class AccountFrozen(Conflict):
        code = "settlement_account_frozen"

    def frozen(obligation):
        raise AccountFrozen()

    def retried() -> list[dict]:
        return [
            json.loads(bytes(row.event))
            for row in PendingEvent.objects.filter(kind="contract.obligation_retried")
        ]

    # when the tick retries it twice, still short of funds
    assert services.settlement_obligations_settle_open() == 0
    assert services.settlement_obligations_settle_open() == 0

    # then the unchanged reason wrote nothing and appended nothing
    assert retried() == []

    # when the retry is refused for another reason (and again)
    handlers = services.SETTLEMENT_HANDLERS[:]
    services.SETTLEMENT_HANDLERS[:] = [frozen]
    try:
        assert services.settlement_obligations_settle_open() == 0
        assert services.settlement_obligations_settle_open() == 0
    finally:
        services.SETTLEMENT_HANDLERS[:] = handlers

    # then the new reason is on the row and in exactly one event naming both
    obligation.refresh_from_db()
    assert (obligation.status, obligation.reason_code) == ("open", "settlement_account_frozen")
    (event,) = retried()
    assert event["data"] == {
        "contract_id": contract.pk,
        "obligation_id": obligation.pk,
        "execution_id": execution.pk,
        "status": "open",
        "previous_reason_code": "insufficient_funds",
        "reason_code": "settlement_account_frozen",
    }
    assert f"contract:{contract.pk}" in event["subject"]
    assert f"settlement_obligation:{obligation.pk}" in event["subject"]


def test_standing_retirement_retires_the_months_certificates_up_to_its_cap(world):
    # given
    issue(world, hours=4)
    contract = services.contract_create(
        actor=world.seller,
        kind=STANDING_RETIREMENT,
        terms={
            "account": world.seller_account.number,
            "beneficiary_name": "Plant Ltd",
            "beneficiary_country": "DE",
            "purpose": "disclosure",
            "max_wh_per_month": 2_500,
        },
        start_at=START,
        end_at=END,
    )
    services.contract_agree(actor=world.seller, contract_id=contract.pk)
    period = f"{DAY.year:04d}-{DAY.month:02d}"

    # when
    dry = services.contract_dry_run(contract_id=contract.pk, period=period)
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"period:{period}", now=END
    )

    # then
    assert dry["would_do"]["volume_wh"] == 2_500
    assert execution.status == "applied"
    retired = Bundle.objects.filter(account=world.seller_account, status=Bundle.Status.RETIRED)
    assert sum(b.unit_end - b.unit_start for b in retired) == 2_500
    assert len(execution.result["retirements"]) == 1


def test_the_calendar_tick_retires_last_month_once_and_expires_ended_contracts(world):
    # given: certificates of DAY's month, a standing retirement, and a PPA that has ended
    from unittest import mock

    from contracts.tasks import contracts_calendar_tick_task

    issue(world, hours=2)
    standing = services.contract_create(
        actor=world.seller,
        kind=STANDING_RETIREMENT,
        terms={
            "account": world.seller_account.number,
            "beneficiary_name": "Plant Ltd",
            "beneficiary_country": "DE",
            "purpose": "disclosure",
        },
        start_at=START,
        end_at=END + dt.timedelta(days=400),
    )
    services.contract_agree(actor=world.seller, contract_id=standing.pk)
    ended = make_ppa(world)
    next_month = (DAY.replace(day=1) + dt.timedelta(days=32)).replace(day=2)

    # when: the tick runs twice in the next month (and past the PPA's end)
    with mock.patch("contracts.tasks.timezone.now", return_value=next_month):
        first = contracts_calendar_tick_task()
        second = contracts_calendar_tick_task()
    services.contract_expire_due(now=END)

    # then
    assert (first, second) == (1, 0)
    execution = ContractExecution.objects.get(contract=standing)
    assert execution.trigger == f"period:{DAY.year:04d}-{DAY.month:02d}"
    assert execution.result["volume_wh"] == 1_001 + 1_002
    ended.refresh_from_db()
    assert ended.status == "expired"
