"""Pay now: the payer's member pays an open PPA obligation or a pending charging bill at
once (API and service), through the same hooks as the execution, billing and retries."""

import pytest

from charging import services as charging
from charging.models import Bill
from contracts import services as contracts
from contracts.models import SettlementObligation
from market.models import JournalEntry
from registry.errors import DomainError
from tests.charging.factories import charging_world
from tests.conftest import client_for
from tests.contracts.conftest import world as world  # the PPA world fixture
from tests.market.conftest import snapshot
from tests.market.factories import deposit
from tests.market.test_payments import (
    billed_session,
    member_balance,
    payments_queued,
    run_ppa,
    total_money,
)

pytestmark = pytest.mark.django_db


def refused(call) -> str:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value.code


def open_obligation(world) -> SettlementObligation:
    """The buyer had no money when the PPA executed: 5 minor units owed, still open."""
    _execution, obligation = run_ppa(world)
    assert (obligation.status, obligation.reason_code) == ("open", "insufficient_funds")
    return obligation


def test_the_buyer_pays_an_open_obligation_now(world):
    # given an open obligation, and then a deposit
    obligation = open_obligation(world)
    buyer_org = world.buyer_account.organisation_id
    deposit(buyer_org, 100)

    # when the buyer's admin pays it now
    paid = contracts.obligation_pay(actor=world.buyer, obligation_id=obligation.pk)

    # then it is settled with the journal entry as its reference, one settlement.paid event
    entry = JournalEntry.objects.get(kind="contract_payment")
    assert (paid.status, paid.reason_code) == ("settled", "")
    assert paid.reference == f"journal_entry:{entry.pk}"
    assert paid.settled_at is not None
    assert member_balance(buyer_org) == 100 - obligation.amount_minor
    assert total_money() == 0
    (event,) = payments_queued()
    assert f"settlement_obligation:{obligation.pk}" in event.subjects
    assert f"journal_entry:{entry.pk}" in event.subjects


def test_paying_an_obligation_without_funds_is_refused_and_changes_nothing(world):
    # given an open obligation and 4 of the 5 minor units
    obligation = open_obligation(world)
    deposit(world.buyer_account.organisation_id, 4)
    before = snapshot()

    # when
    code = refused(lambda: contracts.obligation_pay(actor=world.buyer, obligation_id=obligation.pk))

    # then
    assert code == "insufficient_funds"
    assert snapshot() == before
    obligation.refresh_from_db()
    assert (obligation.status, obligation.reason_code) == ("open", "insufficient_funds")
    assert payments_queued() == []


def test_a_settled_obligation_is_not_paid_twice(world):
    # given a settled obligation
    obligation = open_obligation(world)
    deposit(world.buyer_account.organisation_id, 100)
    contracts.obligation_pay(actor=world.buyer, obligation_id=obligation.pk)
    before = snapshot()

    # when
    code = refused(lambda: contracts.obligation_pay(actor=world.buyer, obligation_id=obligation.pk))

    # then
    assert code == "already_settled"
    assert snapshot() == before
    assert len(payments_queued()) == 1


def test_only_the_payers_members_may_pay_an_obligation(world):
    # given an open obligation the buyer could pay
    obligation = open_obligation(world)
    deposit(world.buyer_account.organisation_id, 100)
    before = snapshot()

    # when the seller (payee), a viewer and the issuing body try
    codes = [
        refused(lambda u=user: contracts.obligation_pay(actor=u, obligation_id=obligation.pk))
        for user in (world.seller, world.viewer, world.ib)
    ]

    # then each is refused and nothing changed
    assert codes == ["not_payer"] * 3
    assert snapshot() == before
    assert SettlementObligation.objects.get(pk=obligation.pk).status == "open"


def test_pay_now_through_the_api_returns_the_settled_obligation(world):
    # given
    obligation = open_obligation(world)
    deposit(world.buyer_account.organisation_id, 100)

    # when
    response = client_for(world.buyer).post(
        f"/api/v1/contracts/obligations/{obligation.pk}/pay/", HTTP_IDEMPOTENCY_KEY="pay-1"
    )

    # then
    assert response.status_code == 200, response.content
    entry = JournalEntry.objects.get(kind="contract_payment")
    assert response.json()["status"] == "settled"
    assert response.json()["reference"] == f"journal_entry:{entry.pk}"


def test_pay_now_through_the_api_without_funds_is_409(world):
    # given
    obligation = open_obligation(world)

    # when
    response = client_for(world.buyer).post(f"/api/v1/contracts/obligations/{obligation.pk}/pay/")

    # then
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_funds"


def pending_bill(world) -> Bill:
    bill = billed_session(world)
    assert (bill.settlement, bill.settlement_reason) == ("pending", "insufficient_funds")
    return bill


def test_the_driver_pays_a_pending_bill_now():
    # given a bill billed while the driver had nothing, then a deposit
    world = charging_world()
    bill = pending_bill(world)
    deposit(world.driver.pk, 5_000)

    # when the driver's admin pays it now
    paid = charging.bill_pay(actor=world.driver_admin, bill_id=bill.pk)

    # then
    entry = JournalEntry.objects.get(kind="bill_payment")
    assert (paid.settlement, paid.settlement_reason) == ("settled", "")
    assert paid.settlement_reference == f"journal_entry:{entry.pk}"
    assert member_balance(world.driver.pk) == 5_000 - bill.total_minor
    assert member_balance(world.cpo.pk) == bill.total_minor
    (event,) = payments_queued()
    assert f"charging_bill:{bill.pk}" in event.subjects


def test_paying_a_bill_without_funds_is_refused_and_changes_nothing():
    # given
    world = charging_world()
    bill = pending_bill(world)
    before = snapshot()

    # when
    code = refused(lambda: charging.bill_pay(actor=world.driver_admin, bill_id=bill.pk))

    # then
    assert code == "insufficient_funds"
    assert snapshot() == before
    bill.refresh_from_db()
    assert (bill.settlement, bill.settlement_reason) == ("pending", "insufficient_funds")


def test_a_settled_bill_and_the_station_owner_are_refused():
    # given a settled bill
    world = charging_world()
    bill = pending_bill(world)
    deposit(world.driver.pk, 5_000)
    charging.bill_pay(actor=world.driver_admin, bill_id=bill.pk)
    before = snapshot()

    # when the driver pays again and the CPO's operator tries
    again = refused(lambda: charging.bill_pay(actor=world.driver_admin, bill_id=bill.pk))
    cpo = refused(lambda: charging.bill_pay(actor=world.operator, bill_id=bill.pk))

    # then
    assert (again, cpo) == ("already_settled", "not_bill_payer")
    assert snapshot() == before
    assert len(payments_queued()) == 1


def test_pay_a_bill_through_the_api():
    # given
    world = charging_world()
    bill = pending_bill(world)
    client = client_for(world.driver_admin)
    refused_response = client.post(f"/api/v1/charging/bills/{bill.pk}/pay/")
    deposit(world.driver.pk, 5_000)

    # when
    response = client.post(f"/api/v1/charging/bills/{bill.pk}/pay/")

    # then
    assert refused_response.status_code == 409
    assert refused_response.json()["code"] == "insufficient_funds"
    assert response.status_code == 200, response.content
    assert response.json()["settlement"] == "settled"
    assert response.json()["settlement_reference"].startswith("journal_entry:")
    assert total_money() == 0


def test_pay_now_replayed_with_its_idempotency_key_answers_the_same_and_pays_once(world):
    # given an obligation paid now through the API with a key
    obligation = open_obligation(world)
    deposit(world.buyer_account.organisation_id, 100)
    client = client_for(world.buyer)
    url = f"/api/v1/contracts/obligations/{obligation.pk}/pay/"
    first = client.post(url, HTTP_IDEMPOTENCY_KEY="pay-again")

    # when the same request is sent again with the same key
    again = client.post(url, HTTP_IDEMPOTENCY_KEY="pay-again")

    # then the first answer is replayed (not already_settled) and one payment was made
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert JournalEntry.objects.filter(kind="contract_payment").count() == 1
    assert len(payments_queued()) == 1
