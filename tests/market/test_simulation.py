"""End to end: the simulated community trades slots through a real HTTP server, its
slots settle against the signed readings its meters sent, and money is conserved."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from assets.models import Reading
from market.models import Market, Order, SlotSettlement
from market.simulation.community import COMMUNITY, MARKET_CODE
from market.simulation.run import simulate
from tests.factories import issuing_body_user

pytestmark = pytest.mark.django_db(transaction=True)

DAY = timezone.now().date() - dt.timedelta(days=2)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate_community", *args, stdout=out)
    return out.getvalue()


def test_four_midday_slots_trade_settle_and_conserve_money():
    issuing_body_user()
    output = run(
        "--day", DAY.isoformat(), "--first-slot", "11:00", "--slots", "4", "--history-days", "2"
    )

    market = Market.objects.get(code=MARKET_CODE)
    cleared = Order.objects.filter(market=market, filled_wh__gt=0)
    assert {o.side for o in cleared} == {"buy", "sell"}
    settlements = SlotSettlement.objects.filter(clearing__market=market)
    assert settlements.count() == 4
    assert {s.status for s in settlements} == {"settled"}
    assert {s.reason for s in settlements} == {""}  # against readings, not the fallback
    assert all(s.delivered_wh > 0 for s in settlements)
    # Every slot's readings were signed and accepted: 2 history days plus 11:00-12:00.
    meters = sum(2 if spec.pv_w else 1 for spec in COMMUNITY)
    assert Reading.objects.filter(meter__serial__startswith="SIM-").count() == meters * (
        2 * 96 + 11 * 4 + 4
    )
    for spec in COMMUNITY:
        assert spec.legal_name in output
    assert "Money moved in total: 0 minor units" in output
    assert "Ledger OK." in output

    # The bill agrees with the settlements: buyers paid what the sellers and the fee got.
    report = simulate(day=DAY, slots=2, first_slot=dt.time(12), history_days=2)
    assert report.slots == 2 and report.settled == 2
    assert report.money_total == 0 and report.ok
    paid = -sum(b.money_minor for b in report.bills if b.bought_wh)
    received = sum(b.money_minor for b in report.bills if b.sold_wh)
    assert paid > 0 and received > 0
    assert paid == received + report.operator_minor
    assert sum(b.sold_wh for b in report.bills) == sum(b.bought_wh for b in report.bills)


def test_a_rerun_reuses_the_community():
    issuing_body_user()
    simulate(day=DAY, slots=1, first_slot=dt.time(12), history_days=1)
    again = simulate(day=DAY, slots=1, first_slot=dt.time(12), history_days=1)
    assert Market.objects.filter(code=MARKET_CODE).count() == 1
    assert len(again.bills) == len(COMMUNITY)
    assert again.replayed == 1 and again.slots == 0  # the slot was cleared by the first run
    assert again.readings == 0  # the meters' readings were stored already
    assert all(b.money_minor == 0 for b in again.bills)
    assert again.ok


def test_refuses_today_and_bad_options():
    with pytest.raises(CommandError, match="before today"):
        run("--day", timezone.now().date().isoformat())
    with pytest.raises(CommandError, match="history-days"):
        run("--history-days", "0")
    with pytest.raises(CommandError, match="issuing body"):
        run("--slots", "1")


def test_exits_non_zero_when_the_ledger_does_not_verify(monkeypatch):
    from ledger.integrity import LedgerTampered
    from market.simulation import run as simulation_run

    def tampered(**kwargs):
        raise LedgerTampered("entry 3: leaf hash differs")

    monkeypatch.setattr(simulation_run, "ledger_verify", tampered)
    issuing_body_user()
    with pytest.raises(CommandError, match="checks failed"):
        run(
            "--day", DAY.isoformat(), "--first-slot", "12:00", "--slots", "1", "--history-days", "1"
        )
