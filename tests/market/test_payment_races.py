"""Real threads against PostgreSQL: one obligation or bill, many concurrent settlements,
one payment."""

import pytest

from charging.services import bills_settle_pending
from contracts import services as contracts
from contracts.models import SettlementObligation
from market.models import JournalEntry, SettlementAccount
from market.replay import replay_market
from market.services import contract_obligation_pay
from tests.certificates.conftest import run_together
from tests.charging.factories import charging_world
from tests.conftest import requires_postgres
from tests.contracts.conftest import world as world  # the PPA world fixture
from tests.market.factories import deposit
from tests.market.test_payments import billed_session, member_balance, run_ppa

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
THREADS = 8


@pytest.fixture
def open_obligation(world):
    """A PPA obligation of 5 minor units left open for lack of funds, then EUR 1.00 in."""
    _execution, obligation = run_ppa(world)
    assert obligation.status == "open"
    deposit(world.buyer_account.organisation_id, 100)
    return obligation


def _assert_paid_once(world, obligation) -> None:
    assert JournalEntry.objects.filter(kind="contract_payment").count() == 1
    assert member_balance(world.buyer_account.organisation_id) == 95
    assert member_balance(world.seller_account.organisation_id) == 5
    assert sum(a.available + a.reserved for a in SettlementAccount.objects.all()) == 0
    assert replay_market().ok


def test_concurrent_payments_of_one_obligation_pay_once(world, open_obligation):
    # when the market's handler is called for the same obligation from 8 threads at once
    results = run_together(lambda i: contract_obligation_pay(open_obligation), THREADS)

    # then every call names the one journal entry, which moved the money once
    entry = JournalEntry.objects.get(kind="contract_payment")
    assert results == [f"journal_entry:{entry.pk}"] * THREADS
    _assert_paid_once(world, open_obligation)


def test_concurrent_retries_settle_one_obligation_once(world, open_obligation):
    # when the periodic retry runs in 8 threads at once
    results = run_together(lambda i: contracts.settlement_obligations_settle_open(), THREADS)

    # then exactly one run settled it
    assert sorted(results) == [0] * (THREADS - 1) + [1]
    open_obligation.refresh_from_db()
    assert open_obligation.status == SettlementObligation.Status.SETTLED
    _assert_paid_once(world, open_obligation)


def test_concurrent_retries_settle_one_bill_once():
    # given a bill left pending for lack of funds, then EUR 50.00 for the driver
    charging = charging_world()
    bill = billed_session(charging)
    assert bill.settlement == "pending"
    deposit(charging.driver.pk, 5_000)

    # when the periodic retry runs in 8 threads at once
    results = run_together(lambda i: bills_settle_pending(), THREADS)

    # then exactly one run settled it, and the money moved once
    assert sorted(results) == [0] * (THREADS - 1) + [1]
    bill.refresh_from_db()
    assert bill.settlement == "settled"
    assert JournalEntry.objects.filter(kind="bill_payment").count() == 1
    assert member_balance(charging.driver.pk) == 5_000 - bill.total_minor
    assert member_balance(charging.cpo.pk) == bill.total_minor
    assert replay_market().ok
