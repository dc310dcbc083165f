"""The battery's intraday charge the market's trading agents read (the contracts app's
lookup on `market.battery_charge_lookups`): the storage balancing state plus the accepted
readings since it, at the contract's efficiency, never below 0 nor above the capacity."""

import datetime as dt

import pytest

from contracts import services
from contracts.models import StorageState
from contracts.selectors import organisation_storage_charge
from market.agent_hooks import BATTERY_CHARGE_LOOKUPS
from tests.certificates.factories import DAY, add_readings
from tests.contracts.storage_world import (
    day_trigger,
    issue_solar,
    make_storage_contract,
    make_world,
)

pytestmark = pytest.mark.django_db
DAY2 = DAY + dt.timedelta(days=1)


def charge_of(world) -> int | None:
    return organisation_storage_charge(organisation_id=world.battery.organisation_id)


def day_one_run():
    """Day one (90 % efficiency, capacity 50,000 Wh) leaves 2,400 Wh through midnight."""
    world = make_world()
    issue_solar(world)
    contract = make_storage_contract(world)
    services.contract_execute(contract_id=contract.pk, trigger=day_trigger())
    state = StorageState.objects.get(device=world.battery)
    assert (state.soc_wh, state.through) == (2_400, DAY2)
    return world


def test_readings_after_the_state_move_the_charge_at_the_contracts_efficiency():
    # given day one has run; on day two the battery charged 1,000 Wh at 08:00 and 1,001 Wh
    # at 09:00 and discharged 500 Wh at 10:00 (readings so far: until 11:00)
    world = day_one_run()
    add_readings(
        world.battery,
        start=DAY2,
        hours=11,
        wh=lambda i: {8: 1_000, 9: 1_001}.get(i, 0),
        meter=world.charge_meter,
    )
    add_readings(
        world.battery,
        start=DAY2,
        hours=11,
        wh=lambda i: 500 if i == 10 else 0,
        meter=world.discharge_meter,
    )

    # then the agents read 2,400 + 900 + 900 (1,001 x 0.9 rounded down) - 500, and the
    # contract's state itself has not moved (day one's readings are not counted again)
    assert charge_of(world) == 2_400 + 900 + 900 - 500
    assert BATTERY_CHARGE_LOOKUPS  # the contracts app registered the lookup
    assert organisation_storage_charge in BATTERY_CHARGE_LOOKUPS
    assert StorageState.objects.get(device=world.battery).soc_wh == 2_400


def test_the_intraday_charge_is_never_negative_nor_above_the_capacity():
    # given day two discharged more than the battery held, then charged beyond capacity
    world = day_one_run()
    add_readings(
        world.battery,
        start=DAY2,
        hours=3,
        wh=lambda i: 5_000 if i == 0 else 0,
        meter=world.discharge_meter,
    )
    add_readings(world.battery, start=DAY2, hours=2, wh=lambda i: 0, meter=world.charge_meter)
    assert charge_of(world) == 0

    add_readings(
        world.battery,
        start=DAY2 + dt.timedelta(hours=2),
        hours=1,
        wh=lambda i: 100_000,
        meter=world.charge_meter,
    )
    assert charge_of(world) == 50_000  # the contract's capacity, not 90,000


def test_before_any_day_has_run_it_counts_from_the_contracts_first_day():
    # given a battery whose state row exists but no day has run yet (through unset)
    world = make_world()
    make_storage_contract(world)
    StorageState.objects.create(device=world.battery, soc_wh=0, capacity_wh=50_000, updated_at=DAY)
    # then day one's readings so far count: 16,000 charged at 90 %, 12,000 discharged
    assert charge_of(world) == 16_000 * 9 // 10 - 12_000
    # an organisation without storage state is unknown to the lookup
    assert organisation_storage_charge(organisation_id=world.solar.organisation_id + 10_000) is None
