"""End to end: the simulated community trades slots through a real HTTP server, its
slots settle against the signed readings its meters sent, and money is conserved."""

import datetime as dt
import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Organisation
from assets.models import Reading
from certificates.models import Bundle
from market.models import Market, Order, SlotSettlement
from market.simulation.community import COMMUNITY, MARKET_CODE
from market.simulation.run import simulate
from tests.factories import issuing_body_user

pytestmark = pytest.mark.django_db(transaction=True)
SLOT = dt.timedelta(minutes=15)

DAY = timezone.now().date() - dt.timedelta(days=2)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate_community", *args, stdout=out)
    return out.getvalue()


def test_four_midday_slots_trade_settle_and_conserve_money():
    issuing_body_user()
    report = simulate(day=DAY, slots=4, first_slot=dt.time(11), history_days=2)

    market = Market.objects.get(code=MARKET_CODE)
    cleared = Order.objects.filter(market=market, filled_wh__gt=0)
    assert {o.side for o in cleared} == {"buy", "sell"}
    settlements = SlotSettlement.objects.filter(clearing__market=market)
    assert settlements.count() == 4
    assert {s.status for s in settlements} == {"settled"}
    assert {s.reason for s in settlements} == {""}  # against readings, not the fallback
    assert all(s.delivered_wh > 0 for s in settlements)
    # Every slot's readings were signed and accepted: 2 history days plus 11:00-12:00.
    meters = sum(1 + bool(spec.pv_w) + 2 * bool(spec.battery_wh) for spec in COMMUNITY)
    assert Reading.objects.filter(meter__serial__startswith="SIM-").count() == meters * (
        2 * 96 + 11 * 4 + 4
    )

    # The bill agrees with the settlements: buyers paid what the sellers and the fee got.
    assert report.slots == 4 and report.settled == 4
    assert report.money_total == 0 and report.ok
    paid = -sum(b.money_minor for b in report.bills if b.bought_wh)
    received = sum(b.money_minor for b in report.bills if b.sold_wh)
    assert paid > 0 and received > 0
    assert paid == received + report.operator_minor
    assert sum(b.sold_wh for b in report.bills) == sum(b.bought_wh for b in report.bills)

    # The battery charged from the midday PV surplus and discharged in the evening and
    # night; its storage balancing contract ran each history day (the played day is not
    # over): the PV certificates of the charge were cancelled into it and its discharge
    # issued as storage certificates, all of it certified (lossless, all charge from PV).
    battery = report.battery
    assert battery.days_applied == 2 and battery.days_failed == []
    assert battery.charged_wh == battery.discharged_wh == battery.certified_wh > 0
    charged = Reading.objects.filter(meter__serial="SIM-BATIN-EICHE", wh__gt=0)
    assert charged and all(6 <= r.start.hour < 18 for r in charged)
    discharged = Reading.objects.filter(meter__serial="SIM-BATOUT-EICHE", start__hour__gte=17)
    assert sum(r.wh for r in discharged) > 0
    storage = Bundle.objects.filter(
        issuance__is_storage=True, account__organisation__legal_name="Sim Prosumer Eiche"
    )
    assert sum(b.unit_end - b.unit_start for b in storage) == battery.certified_wh
    # Its agent read the intraday charge through the hook: the contract's state (empty at
    # midnight: the played day is not over) plus the battery's readings sent before each
    # run (10 minutes before the slot's gate), lossless, within its capacity: full by 11:00.
    capacity = next(spec.battery_wh for spec in COMMUNITY if spec.battery_wh)
    gate = dt.timedelta(minutes=market.gate_closure_minutes + 10)
    midnight = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    expected = []
    for index in range(4):
        run_at = dt.datetime.combine(DAY, dt.time(11), tzinfo=dt.UTC) + index * SLOT - gate
        charge = 0
        rows = Reading.objects.filter(
            meter__serial__in=("SIM-BATIN-EICHE", "SIM-BATOUT-EICHE"),
            start__gte=midnight,
            end__lte=run_at,
        ).order_by("start", "meter_id")
        for serial, wh in rows.values_list("meter__serial", "wh"):
            charge = min(capacity, charge + wh) if serial == "SIM-BATIN-EICHE" else charge - wh
            charge = max(0, charge)
        expected.append(charge)
    assert battery.charge_read_wh == expected
    assert all(0 < wh <= capacity for wh in expected)


def test_buyers_receive_the_certificates_of_the_pv_they_bought():
    issuing_body_user()
    report = simulate(day=DAY, slots=4, first_slot=dt.time(11), history_days=1)

    # The hour 11:00-12:00 is over when its last slot settles: its PV is issued hourly and
    # every delivered Wh came with its certificate, the first three slots' afterwards.
    assert report.ok and report.certificates_pending_wh == 0
    assert report.certificates_later_wh > 0
    buyers = [b for b in report.bills if b.bought_wh]
    sellers = [b for b in report.bills if b.sold_wh]
    assert buyers and sellers
    for bill in buyers:
        assert bill.certificates_wh == bill.bought_wh > 0
        # ... and they are in the buyer's trading account: units of others' devices.
        organisation = Organisation.objects.get(legal_name=bill.name)
        credited = Bundle.objects.filter(
            account__organisation=organisation, status=Bundle.Status.ACTIVE
        ).exclude(device__organisation=organisation)
        assert bill.certificates_wh == sum(b.unit_end - b.unit_start for b in credited)
    # Conserved: what the sellers' certificates delivered is what the buyers received, and
    # never more than a seller sold or its PV was issued.
    assert sum(b.certificates_wh for b in buyers) == sum(b.certificates_sold_wh for b in sellers)
    for bill in sellers:
        assert 0 < bill.certificates_sold_wh <= bill.sold_wh
        assert bill.certificates_sold_wh <= bill.issued_wh
    assert all(b.issued_wh == 0 for b in report.bills if not b.sold_wh and b.bought_wh)

    # A slot whose hour is not over settles its energy; its certificates wait for the hour.
    output = run(
        "--day", DAY.isoformat(), "--first-slot", "12:00", "--slots", "2", "--history-days", "1"
    )
    for spec in COMMUNITY:
        assert spec.legal_name in output
    assert "Money moved in total: 0 minor units" in output
    assert "Ledger OK." in output
    assert re.search(r"0 delivered after their slot settled .*, [1-9]\d* still pending", output)


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
