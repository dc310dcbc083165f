"""Money moves for contracts and charging: the market pays a PPA's settlement obligation
and a charging bill between the parties' settlement accounts, once, or leaves it open."""

import datetime as dt

import pytest

from charging import services as charging
from charging.models import Bill
from charging.services import bills_settle_pending
from contracts import services as contracts
from contracts.models import ContractExecution, SettlementObligation
from ledger.models import PendingEvent
from market import events
from market.models import JournalEntry, JournalLine, SettlementAccount
from market.services import charging_bill_pay, contract_obligation_pay
from tests.charging.factories import DAY as CHARGING_DAY
from tests.charging.factories import charge, charging_world, tx_event
from tests.contracts.conftest import issue, make_ppa
from tests.contracts.conftest import world as world  # the PPA world fixture
from tests.market.conftest import snapshot
from tests.market.factories import deposit

pytestmark = pytest.mark.django_db


def member_balance(organisation_id: int, currency: str = "EUR") -> int:
    account = SettlementAccount.objects.filter(
        organisation_id=organisation_id, currency=currency, kind="member"
    ).first()
    return 0 if account is None else account.available


def total_money() -> int:
    """Members' and the external account's balances together: always zero."""
    return sum(a.available + a.reserved for a in SettlementAccount.objects.all())


def payments_queued() -> list[PendingEvent]:
    return list(PendingEvent.objects.filter(kind=events.PAID).order_by("pk"))


def run_ppa(world):
    """A 30% PPA at 50.00 EUR/MWh and three hours issued: the execution and its obligation."""
    contract = make_ppa(world)
    issuance = issue(world, hours=3)
    # (with autocommit, as in the race tests, the issuance's on-commit task ran it already)
    contracts.contract_execute(contract_id=contract.pk, trigger=f"issuance:{issuance.pk}")
    execution = ContractExecution.objects.get(contract=contract)
    return execution, SettlementObligation.objects.get(execution=execution)


def test_a_ppa_execution_pays_the_seller_from_the_buyers_account(world):
    # given: the buyer has EUR 10.00
    buyer_org = world.buyer_account.organisation_id
    seller_org = world.seller_account.organisation_id
    deposit(buyer_org, 1_000)
    members_before = member_balance(buyer_org) + member_balance(seller_org)

    # when
    execution, obligation = run_ppa(world)

    # then: 30% of 3,006 Wh = 902 Wh at 50.00/MWh = 4.51 -> 5 minor units moved
    assert execution.status == ContractExecution.Status.APPLIED
    assert obligation.status == SettlementObligation.Status.SETTLED
    assert obligation.amount_minor == 5
    assert (member_balance(buyer_org), member_balance(seller_org)) == (995, 5)
    assert member_balance(buyer_org) + member_balance(seller_org) == members_before
    assert total_money() == 0
    entry = JournalEntry.objects.get(kind="contract_payment")
    assert obligation.reference == f"journal_entry:{entry.pk}"
    assert entry.reference == f"settlement_obligation:{obligation.pk}"
    assert sorted(entry.lines.values_list("amount", flat=True)) == [-5, 5]
    assert execution.result["obligation"]["status"] == "settled"
    (paid,) = payments_queued()
    payer = SettlementAccount.objects.get(organisation_id=buyer_org)
    payee = SettlementAccount.objects.get(organisation_id=seller_org)
    assert set(paid.subjects) >= {
        f"journal_entry:{entry.pk}",
        f"settlement_account:{payer.pk}",
        f"settlement_account:{payee.pk}",
        f"settlement_obligation:{obligation.pk}",
    }


def test_short_funds_leave_the_obligation_open_with_its_reason_and_move_no_money(world):
    # given: the buyer has 4 minor units, the obligation will be 5
    buyer_org = world.buyer_account.organisation_id
    deposit(buyer_org, 4)
    before = snapshot()

    # when
    execution, obligation = run_ppa(world)

    # then: the certificates moved (the execution applies), the debt is recorded, no cent
    assert execution.status == ContractExecution.Status.APPLIED
    assert (obligation.status, obligation.reason_code) == ("open", "insufficient_funds")
    assert execution.result["obligation"]["reason_code"] == "insufficient_funds"
    after = snapshot()
    assert after["balances"] == before["balances"]
    for model in ("market.JournalEntry", "market.JournalLine", "market.SettlementAccount"):
        assert after["rows"][model] == before["rows"][model]
    assert payments_queued() == []


def test_the_calendar_tick_pays_an_open_obligation_once_funds_arrive(world):
    # given an obligation left open for lack of funds, then a deposit
    buyer_org = world.buyer_account.organisation_id
    _execution, obligation = run_ppa(world)
    assert obligation.status == "open"
    deposit(buyer_org, 100)

    # when the retry runs twice
    first = contracts.settlement_obligations_settle_open()
    second = contracts.settlement_obligations_settle_open()

    # then it paid once
    obligation.refresh_from_db()
    assert (first, second) == (1, 0)
    assert (obligation.status, obligation.reason_code) == ("settled", "")
    assert member_balance(buyer_org) == 95
    assert member_balance(world.seller_account.organisation_id) == 5
    assert JournalEntry.objects.filter(kind="contract_payment").count() == 1
    assert len(payments_queued()) == 1


def test_paying_one_obligation_twice_pays_once(world):
    # given a settled obligation
    deposit(world.buyer_account.organisation_id, 1_000)
    _execution, obligation = run_ppa(world)
    lines = JournalLine.objects.count()

    # when the market is asked to pay it again (the handler, as a retry would)
    reference = contract_obligation_pay(obligation)

    # then it names the first payment and moves nothing
    assert reference == obligation.reference
    assert JournalLine.objects.count() == lines
    assert member_balance(world.buyer_account.organisation_id) == 995
    assert len(payments_queued()) == 1


def billed_session(world, i: int = 0) -> Bill:
    """A 90-minute session of 12 kWh: 360 energy + 180 time + 50 flat = 590 minor units."""
    start = CHARGING_DAY + dt.timedelta(hours=2 + 2 * i)
    session = charge(world, start=start, readings=[(0, 0), (90, 12_000)], tx=f"TX-{i}")
    return Bill.objects.get(session=session)


def test_a_charging_bill_is_paid_by_the_drivers_organisation_to_the_station_owner():
    # given a driver's organisation with EUR 50.00
    world = charging_world()
    deposit(world.driver.pk, 5_000)

    # when a session is billed
    bill = billed_session(world)

    # then the bill is settled, the money moved to the CPO, and nothing was created
    assert bill.total_minor > 0
    assert bill.settlement == Bill.Settlement.SETTLED
    entry = JournalEntry.objects.get(kind="bill_payment")
    assert bill.settlement_reference == f"journal_entry:{entry.pk}"
    assert entry.reference == f"charging_bill:{bill.pk}"
    assert member_balance(world.driver.pk) == 5_000 - bill.total_minor
    assert member_balance(world.cpo.pk) == bill.total_minor
    assert total_money() == 0
    (paid,) = payments_queued()
    assert f"charging_bill:{bill.pk}" in paid.subjects
    assert paid.event and events.PAID in bytes(paid.event).decode()


def test_a_bill_the_driver_cannot_pay_stays_pending_and_is_paid_by_the_retry():
    # given a driver's organisation with no money
    world = charging_world()
    before = snapshot()

    # when a session is billed
    bill = billed_session(world)

    # then the bill exists, pending with its reason, and no money row changed
    assert (bill.settlement, bill.settlement_reason) == ("pending", "insufficient_funds")
    after = snapshot()
    assert after["balances"] == before["balances"]
    assert after["rows"]["market.JournalEntry"] == before["rows"]["market.JournalEntry"]
    assert bills_settle_pending() == 0

    # when the funds arrive and the periodic retry runs (twice)
    deposit(world.driver.pk, 5_000)
    settled = [bills_settle_pending(), bills_settle_pending()]

    # then it was paid once
    bill.refresh_from_db()
    assert settled == [1, 0]
    assert (bill.settlement, bill.settlement_reason) == ("settled", "")
    assert member_balance(world.cpo.pk) == bill.total_minor
    assert JournalEntry.objects.filter(kind="bill_payment").count() == 1
    assert charging_bill_pay(bill) == bill.settlement_reference
    assert JournalEntry.objects.filter(kind="bill_payment").count() == 1


def test_many_payments_conserve_money():
    # given a driver's organisation paying one CPO over several sessions
    world = charging_world()
    deposit(world.driver.pk, 2_000)
    members_before = sum(
        a.available + a.reserved for a in SettlementAccount.objects.filter(kind="member")
    )

    # when four sessions are billed (the last ones beyond the driver's funds)
    bills = [billed_session(world, i) for i in range(4)]

    # then every cent that left the driver reached the CPO, and none was made
    assert [b.settlement for b in bills] == ["settled"] * 3 + ["pending"]
    paid = sum(b.total_minor for b in bills if b.settlement == "settled")
    assert paid == 3 * 590
    assert member_balance(world.driver.pk) == 2_000 - paid
    assert member_balance(world.cpo.pk) == paid
    members_after = sum(
        a.available + a.reserved for a in SettlementAccount.objects.filter(kind="member")
    )
    assert members_after == members_before
    assert total_money() == 0
    for entry in JournalEntry.objects.prefetch_related("lines"):
        assert sum(line.amount for line in entry.lines.all()) == 0


def test_a_bill_to_the_station_owners_own_organisation_moves_no_money():
    # given a driver card of the CPO itself
    world = charging_world()
    charging.driver_token_register(
        actor=world.operator, organisation_id=world.cpo.pk, id_token="OWNCARD01", type="ISO14443"
    )
    deposit(world.cpo.pk, 5_000)
    before = snapshot()["balances"]

    # when the CPO's own car charges
    start = CHARGING_DAY + dt.timedelta(hours=3)
    messages = [("Started", 0, 0), ("Ended", 60, 8_000)]
    for seq, (kind, minutes, wh) in enumerate(messages):
        session = charging.transaction_event_record(
            actor=world.operator,
            station_id=world.station.pk,
            message=tx_event(
                kind,
                seq,
                start + dt.timedelta(minutes=minutes),
                wh,
                transaction_id="OWN-1",
                id_token="OWNCARD01",
            ),
        )

    # then the bill is settled with nothing to pay, and no journal entry or event
    bill = Bill.objects.get(session=session)
    assert (bill.billed_organisation_id, bill.total_minor > 0) == (world.cpo.pk, True)
    assert (bill.settlement, bill.settlement_reference) == ("settled", "nothing_to_pay")
    assert snapshot()["balances"] == before
    assert not JournalEntry.objects.filter(kind="bill_payment").exists()
    assert payments_queued() == []
