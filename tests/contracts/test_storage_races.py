"""Races on PostgreSQL: executions of one battery queue on its state of charge row."""

import datetime as dt

import pytest
from django.db import connection

from certificates.models import Bundle
from contracts import services
from contracts.models import ContractExecution, StorageState
from tests.certificates.conftest import run_together
from tests.certificates.factories import DAY, add_readings
from tests.contracts.storage_world import (
    day_trigger,
    issue_solar,
    make_storage_contract,
    make_world,
)

requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and real concurrency need PostgreSQL"
)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_executions_of_one_day_apply_exactly_once():
    # given
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)

    # when
    results = run_together(
        lambda i: services.contract_execute(contract_id=contract.pk, trigger=day_trigger()), n=6
    )

    # then
    assert [r for r in results if isinstance(r, Exception)] == []
    applied = [r for r in results if isinstance(r, ContractExecution)]
    assert len(applied) == 1 and applied[0].status == "applied"
    assert results.count(None) == 5
    stored = Bundle.objects.filter(status=Bundle.Status.STORED)
    assert sum(b.unit_end - b.unit_start for b in stored) == 16_000
    assert StorageState.objects.get(device=world.battery).soc_wh == 2_400


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_days_at_once_never_plan_on_a_stale_state_of_charge():
    # given: day two discharges 2,000 Wh of what day one leaves (2,400)
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    day2 = DAY + dt.timedelta(days=1)
    add_readings(world.battery, start=day2, hours=24, wh=lambda i: 0, meter=world.charge_meter)
    add_readings(
        world.battery,
        start=day2,
        hours=24,
        wh=lambda i: 2_000 if i == 7 else 0,
        meter=world.discharge_meter,
    )
    days = [day_trigger(), day_trigger(day2)]

    # when
    results = run_together(
        lambda i: services.contract_execute(contract_id=contract.pk, trigger=days[i % 2]), n=2
    )

    # then: day one applies; day two applied after it, or was refused as out of order
    assert [r for r in results if isinstance(r, Exception)] == []
    first, second = results
    assert first.status == "applied"
    state = StorageState.objects.get(device=world.battery)
    if second.status == "applied":
        assert (state.soc_wh, state.through) == (400, day2 + dt.timedelta(days=1))
    else:
        assert second.reason_code == "storage_period_out_of_order"
        assert (state.soc_wh, state.through) == (2_400, day2)
