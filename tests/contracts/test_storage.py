"""Storage balancing: a battery shifts midday solar into the evening under EnergyTag's
storage rules (charge cancelled, discharge issued as storage certificates with the
charge's origin, losses never certified, state of charge never negative)."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Account
from assets.models import DeviceOwner, Meter, Reading
from certificates.models import Bundle, Issuance, StorageOrigin
from certificates.replay import replay_ledger
from contracts import services
from contracts.errors import InvalidTerms, OverlappingClaims
from contracts.models import ContractExecution, StorageLayer, StorageState
from contracts.replay import replay_storage
from ledger.models import PendingEvent
from ledger.services import ledger_integrate
from tests.certificates.factories import DAY, MeterFactory, add_readings
from tests.contracts.storage_world import (
    day_trigger,
    issue_solar,
    make_storage_contract,
    make_world,
    storage_terms,
)

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def wh(rows) -> int:
    return sum(b.unit_end - b.unit_start for b in rows)


def snapshot(world) -> tuple:
    return (
        list(Bundle.objects.order_by("pk").values_list("pk", "status", "account_id")),
        list(StorageLayer.objects.values_list("pk", "remaining_wh")),
        list(StorageState.objects.values_list("device_id", "soc_wh", "through")),
        Issuance.objects.count(),
        Reading.objects.filter(issued_at__isnull=False).count(),
    )


def test_a_battery_shifts_midday_solar_into_the_evening_with_storage_certificates():
    # given: 4 x 4,000 Wh charged at 10-13h, 4 x 3,000 Wh discharged at 18-21h, 90%
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())

    # then: 16,000 Wh of solar certificates are cancelled (stored), not retired
    assert execution.status == "applied", execution.reason_detail
    stored = Bundle.objects.filter(status=Bundle.Status.STORED)
    assert wh(stored) == 16_000
    assert {b.account_id for b in stored} == {world.charge_account.pk}
    # 14,400 Wh deliverable after losses; 12,000 discharged and certified; 2,400 left
    result = execution.result
    assert (result["charged_wh"], result["stored_wh"], result["loss_wh"]) == (16_000, 14_400, 1_600)
    assert (result["discharged_wh"], result["certified_wh"]) == (12_000, 12_000)
    assert result["certified_wh"] <= result["cancelled_wh"] * 900_000 // 1_000_000
    state = StorageState.objects.get(device=world.battery)
    assert (state.soc_wh, state.through) == (2_400, DAY + dt.timedelta(days=1))
    assert all(row[6] >= 0 for row in result["hours"])
    # storage certificates, in the battery's name, for the discharge hours
    issuance = Issuance.objects.get(is_storage=True)
    assert issuance.device_id == world.battery.pk
    issued = Bundle.objects.filter(issuance=issuance).order_by("unit_start")
    assert wh(issued) == 12_000
    assert {b.account_id for b in issued} == {world.storage_account.pk}
    assert {b.period_start for b in issued} == {DAY + h * HOUR for h in (18, 19, 20, 21)}
    # each carries the origin of what charged it, first in first out: 18h from the 10h
    # charge, 19h from the rest of 10h (600) and from 11h (2,400)
    origins = list(StorageOrigin.objects.filter(issuance=issuance).order_by("unit_start"))
    assert len(origins) == len(issued)
    first, second, third = origins[:3]
    assert (first.unit_end - first.unit_start, first.origin_period_start) == (
        3_000,
        DAY + 10 * HOUR,
    )
    assert (second.unit_end - second.unit_start, second.origin_period_start) == (
        600,
        DAY + 10 * HOUR,
    )
    assert (third.unit_end - third.unit_start, third.origin_period_start) == (
        2_400,
        DAY + 11 * HOUR,
    )
    assert {o.origin_device_id for o in origins} == {world.solar.pk}
    assert {o.origin_energy_source_code for o in origins} == {world.solar.energy_source_code}
    assert all(o.charged_bundle.status == Bundle.Status.STORED for o in origins)
    # the discharge readings are issued: the battery's own issuance cannot issue them again
    assert not Reading.objects.filter(meter=world.discharge_meter, wh__gt=0, issued_at=None)
    # one ledger event names the contract, the battery, every bundle and the accounts
    (event,) = PendingEvent.objects.filter(kind="contract.executed")
    subjects = set(event.subjects)
    assert f"contract:{contract.pk}" in subjects
    assert f"device:{world.battery.pk}" in subjects
    assert f"issuance:{issuance.pk}" in subjects
    for bundle in [*stored, *issued]:
        assert f"bundle:{bundle.pk}" in subjects
    for account in (world.charge_account, world.storage_account):
        assert f"account:{account.pk}" in subjects
    assert PendingEvent.objects.order_by("-pk").first().kind == "contract.executed"


def test_the_next_day_discharges_what_was_left_and_replay_agrees():
    # given: day one leaves 2,400 Wh; day two charges nothing and discharges 2,000
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    services.contract_execute(contract_id=contract.pk, trigger=day_trigger())
    day2 = DAY + dt.timedelta(days=1)
    add_readings(world.battery, start=day2, hours=24, wh=lambda i: 0, meter=world.charge_meter)
    add_readings(
        world.battery,
        start=day2,
        hours=24,
        wh=lambda i: 2_000 if i == 7 else 0,
        meter=world.discharge_meter,
    )

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger(day2))

    # then: the oldest layer left (13h's) delivers it
    assert execution.status == "applied", execution.reason_detail
    assert StorageState.objects.get(device=world.battery).soc_wh == 400
    last = StorageOrigin.objects.order_by("-pk").first()
    assert last.origin_period_start == DAY + 13 * HOUR
    assert last.unit_end - last.unit_start == 2_000
    report = replay_ledger()
    assert report.ok, report.problems
    assert report.holdings[world.storage_account.pk] == {"active": 14_000}
    assert report.holdings[world.charge_account.pk]["stored"] == 16_000
    # and the operator's command agrees, once the integrator has numbered the events
    ledger_integrate()
    out = io.StringIO()
    call_command("replay_ledger", "--holdings", stdout=out)
    assert "the tables agree" in out.getvalue()
    assert f"account {world.storage_account.pk}: active 14000 Wh" in out.getvalue()


def test_replay_sees_a_state_of_charge_changed_behind_the_services():
    # given
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    services.contract_execute(contract_id=contract.pk, trigger=day_trigger())
    assert replay_storage().ok
    assert "1 storage days" in replay_storage().summary

    # when: 1,000 Wh appear in the battery outside the services
    StorageState.objects.filter(device=world.battery).update(soc_wh=3_400)

    # then: both the ledger and the layers disagree with the table
    report = replay_storage()
    assert report.problem_count == 2, report.problems
    with pytest.raises(CommandError):
        call_command("replay_ledger", stdout=io.StringIO(), stderr=io.StringIO())


def test_replay_sees_a_storage_certificate_changed_behind_the_services():
    # given
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    services.contract_execute(contract_id=contract.pk, trigger=day_trigger())
    assert replay_ledger().ok

    # when: a stored bundle is made active again outside the services
    first = Bundle.objects.filter(status=Bundle.Status.STORED).order_by("pk").first()
    Bundle.objects.filter(pk=first.pk).update(status=Bundle.Status.ACTIVE)
    # then
    report = replay_ledger()
    assert not report.ok
    assert any("stored" in problem for problem in report.problems)


def test_a_discharge_beyond_the_state_of_charge_is_parked_and_changes_nothing():
    # given: 1,000 Wh discharged at 9h, before the battery ever charged
    world = make_world(discharge={9: 1_000, 18: 3_000})
    issue_solar(world)
    contract = make_storage_contract(world)
    before = snapshot(world)

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())

    # then
    dry = services.contract_dry_run(contract_id=contract.pk, period=DAY.date().isoformat())
    assert dry["would_fail"]["code"] == "storage_discharge_exceeds_charge"
    assert dry["would_fail"]["discharge_wh"] == 1_000
    assert execution.status == "parked"
    assert execution.reason_code == "storage_discharge_exceeds_charge"
    assert "09:00" in execution.reason_detail
    assert snapshot(world) == before
    (event,) = PendingEvent.objects.filter(kind__startswith="contract.execution")
    assert event.kind == "contract.execution_failed"


def test_an_uncovered_charge_is_stored_but_its_discharge_is_never_certified():
    # given: solar covers only 10-11h; the battery charges 10-13h
    world = make_world(solar={10: 5_000, 11: 5_000})
    issue_solar(world)
    contract = make_storage_contract(world)

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())

    # then: 8,000 Wh cancelled, 14,400 stored, only what the certified layers give issued
    assert execution.status == "applied", execution.reason_detail
    assert execution.result["cancelled_wh"] == 8_000
    certified = execution.result["certified_wh"]
    assert certified == 7_200  # 2 x 3,600: the certified layers, drawn first
    assert certified <= 8_000 * 900_000 // 1_000_000
    assert wh(Bundle.objects.filter(issuance__is_storage=True)) == certified
    assert StorageState.objects.get(device=world.battery).soc_wh == 2_400


def test_a_charge_above_the_capacity_is_refused():
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world, capacity_wh=10_000)

    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())

    assert (execution.status, execution.reason_code) == ("parked", "storage_capacity_exceeded")
    assert not Bundle.objects.filter(status=Bundle.Status.STORED).exists()


def test_an_executed_day_is_skipped_and_days_run_in_order():
    # given
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    services.contract_execute(contract_id=contract.pk, trigger=day_trigger())
    before = (PendingEvent.objects.count(), snapshot(world))

    # when: the same day again, a day skipping the next, and a day before the contract
    again = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())
    earlier = services.contract_execute(
        contract_id=contract.pk, trigger=day_trigger(DAY + dt.timedelta(days=2))
    )
    before_start = services.contract_execute(
        contract_id=contract.pk, trigger=day_trigger(DAY - dt.timedelta(days=1))
    )

    # then
    assert again is None and before_start is None
    assert earlier.status == "parked"
    assert earlier.reason_code == "storage_period_out_of_order"
    assert str((DAY + dt.timedelta(days=1)).date()) in earlier.reason_detail
    assert snapshot(world) == before[1]
    assert ContractExecution.objects.filter(contract=contract, status="applied").count() == 1


def test_nothing_is_half_applied_when_the_storage_account_is_closed():
    # given: the storage account is closed after the contract was agreed
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    Account.objects.filter(pk=world.storage_account.pk).update(status=Account.Status.CLOSED)
    before = snapshot(world)

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())

    # then: the charge was not cancelled either
    assert execution.status == "parked"
    assert execution.reason_code == "account_closed"
    assert snapshot(world) == before
    assert replay_ledger().ok


def test_the_dry_run_shows_the_day_and_writes_nothing():
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    before = snapshot(world)

    dry = services.contract_dry_run(contract_id=contract.pk, period=DAY.date().isoformat())

    assert snapshot(world) == before
    assert dry["trigger"] == day_trigger()
    assert dry["would_do"]["certified_wh"] == 12_000
    assert dry["would_fail"] is None
    assert dry["executed"] is None
    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())
    plan = {k: v for k, v in execution.result.items() if k not in ("units", "storage_issuance_id")}
    assert plan == dry["would_do"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"efficiency_ppm": 0}, "efficiency_ppm"),
        ({"efficiency_ppm": 1_000_001}, "efficiency_ppm"),
        ({"capacity_wh": 0}, "capacity_wh"),
        ({"capacity_wh": 100_001}, "capacity_wh"),  # above the battery's own capacity
        ({"storage_account": None}, "storage_account"),
    ],
)
def test_terms_are_validated_up_front(overrides, field):
    world = make_world()
    terms = storage_terms(world, **overrides)
    if overrides.get("storage_account", "") is None:
        terms["storage_account"] = world.charge_account.number
        terms["device_id"] = world.battery.pk
    with pytest.raises(InvalidTerms) as caught:
        services.contract_create(
            actor=world.operator,
            kind="storage_balancing",
            terms=terms,
            start_at=DAY,
            end_at=DAY + dt.timedelta(days=30),
        )
    assert field in caught.value.extra["fields"]


def test_a_plant_that_stores_nothing_is_no_battery():
    world = make_world()
    with pytest.raises(InvalidTerms) as caught:
        services.contract_create(
            actor=world.operator,
            kind="storage_balancing",
            terms=storage_terms(world, device_id=world.solar.pk),
            start_at=DAY,
            end_at=DAY + dt.timedelta(days=30),
        )
    assert caught.value.extra["fields"] == {"device_id": ["not a storage device"]}


def test_a_battery_issued_automatically_cannot_be_balanced():
    world = make_world()
    world.battery.issuance_policy = "automatic_hourly"
    world.battery.save(update_fields=["issuance_policy"])
    with pytest.raises(InvalidTerms) as caught:
        make_storage_contract(world)
    assert caught.value.extra["fields"] == {
        "device_id": ["the battery's issuance policy must be manual"]
    }


def test_one_storage_contract_at_a_time_balances_a_battery():
    world = make_world()
    make_storage_contract(world)
    with pytest.raises(OverlappingClaims):
        make_storage_contract(world)


def test_a_supplier_charging_the_battery_is_a_party_and_must_agree():
    # given: the charge account belongs to another organisation
    world = make_world(supplier=True)
    issue_solar(world)  # into the plant's own account, not the supplier's
    contract = make_storage_contract(world, active=False)
    services.contract_agree(actor=world.operator, contract_id=contract.pk)
    contract.refresh_from_db()
    assert contract.status == "draft"
    roles = dict(contract.parties.values_list("role", "organisation_id"))
    assert roles["charge_supplier"] == world.charge_account.organisation_id

    # when
    services.contract_agree(actor=world.supplier, contract_id=contract.pk)
    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())

    # then: no certificates in the supplier's account: all charge uncertified
    assert execution.status == "applied", execution.reason_detail
    assert execution.result["cancelled_wh"] == 0
    assert execution.result["certified_wh"] == 0
    assert not Issuance.objects.filter(is_storage=True).exists()
    # the discharge is spent all the same: the battery's own issuance cannot certify it
    assert not Reading.objects.filter(meter=world.discharge_meter, issued_at=None).exists()


def test_an_amendment_keeps_the_battery_but_may_change_the_efficiency():
    # given: a second battery the same account also takes the output of
    world = make_world()
    other = make_world()
    DeviceOwner.objects.create(
        device=other.battery,
        organisation=world.storage_account.organisation,
        account=world.storage_account,
        share_numerator=1,
        share_denominator=2,
    )
    contract = make_storage_contract(world)

    # when / then
    with pytest.raises(InvalidTerms) as caught:
        services.contract_amend(
            actor=world.operator,
            contract_id=contract.pk,
            terms=storage_terms(world, device_id=other.battery.pk),
        )
    assert caught.value.extra["fields"] == {"device_id": ["cannot change"]}
    amended = services.contract_amend(
        actor=world.operator,
        contract_id=contract.pk,
        terms=storage_terms(world, efficiency_ppm=850_000),
    )
    assert amended.proposal["terms"]["efficiency_ppm"] == 850_000


def test_a_day_waiting_for_late_readings_applies_on_retry():
    # given: the discharge meter's evening readings have not arrived
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    Reading.objects.filter(meter=world.discharge_meter, start__gte=DAY + 12 * HOUR).delete()
    parked = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())
    assert (parked.status, parked.reason_code) == ("parked", "storage_readings_incomplete")
    assert not Bundle.objects.filter(status=Bundle.Status.STORED).exists()

    # when: they arrive, and a member retries the day
    add_readings(
        world.battery,
        start=DAY + 12 * HOUR,
        hours=12,
        wh=lambda i: 3_000 if 6 <= i <= 9 else 0,
        meter=world.discharge_meter,
    )
    retried = services.contract_execution_retry(actor=world.operator, execution_id=parked.pk)

    # then
    assert (retried.pk, retried.status, retried.attempts) == (parked.pk, "applied", 2)
    assert retried.result["certified_wh"] == 12_000
    assert StorageState.objects.get(device=world.battery).soc_wh == 2_400


def test_a_discharge_meter_replaced_at_noon_still_covers_the_day():
    # given: the discharge meter read until noon; its replacement from noon on
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    Reading.objects.filter(meter=world.discharge_meter, start__gte=DAY + 12 * HOUR).delete()
    replacement = MeterFactory(device=world.battery, kind=Meter.Kind.STORAGE)
    add_readings(
        world.battery,
        start=DAY + 12 * HOUR,
        hours=12,
        wh=lambda i: 3_000 if 6 <= i <= 9 else 0,
        meter=replacement,
    )

    # when
    execution = services.contract_execute(contract_id=contract.pk, trigger=day_trigger())

    # then
    assert execution.status == "applied", execution.reason_detail
    assert execution.result["discharged_wh"] == 12_000
