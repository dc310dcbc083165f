"""Meters: registration with keys, key rotation with history, counter resets, replacement."""

import datetime as dt
import json

import pytest

from assets import services
from assets.errors import (
    CounterResetConflict,
    DeviceStatusConflict,
    MeterExists,
    MeterKeyConflict,
    MeterKeyInvalid,
    MeterKeyRequired,
    MeterStatusConflict,
    NotDeviceOperator,
    ReadingsRejected,
)
from assets.models import Device, Meter, MeterKey
from assets.readings_io import iter_mapping_rows
from ledger.models import PendingEvent
from registry.errors import InvalidInput
from tests.assets.factories import (
    DeviceFactory,
    counter_row,
    hours_ago,
    interval_row,
    public_key_b64,
    signing_key,
)
from tests.factories import OrganisationFactory, member_of

UTC = dt.UTC


def last_event() -> dict:
    return json.loads(bytes(PendingEvent.objects.latest("id").event))


def test_register_meter_with_key(producer, device, snapshot):
    key = signing_key(3)
    before = snapshot()
    meter = services.meter_register(
        actor=producer, device_id=device.pk, serial="SRC-PV-0009", public_key=bytes(key.verify_key)
    )
    stored_key = MeterKey.objects.get(meter=meter)
    assert stored_key.public_key == public_key_b64(key)
    assert stored_key.valid_from == dt.datetime(2020, 1, 1, tzinfo=UTC)  # commissioning date
    after = snapshot()
    assert (after["Meter"], after["MeterKey"]) == (before["Meter"] + 1, before["MeterKey"] + 1)
    assert after["ledger_events"] == before["ledger_events"] + 1
    event = last_event()
    assert event["type"] == "meter.registered"
    assert event["data"]["public_key"] == public_key_b64(key)
    assert sorted(event["subject"]) == sorted([f"meter:{meter.pk}", f"device:{device.pk}"])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"serial": "bad serial"}, InvalidInput),
        ({"serial": "M1", "kind": "heat"}, InvalidInput),
        ({"serial": "M1", "public_key": "c2hvcnQ="}, MeterKeyInvalid),
        ({"serial": "M1", "installed_at": dt.datetime(2024, 1, 1)}, InvalidInput),
    ],
)
def test_bad_meter_registration_stores_nothing(producer, device, snapshot, kwargs, error):
    before = snapshot()
    with pytest.raises(error):
        services.meter_register(actor=producer, device_id=device.pk, **kwargs)
    assert snapshot() == before


def test_key_required_by_device_policy(producer, producer_org, snapshot):
    device = DeviceFactory(organisation=producer_org, require_signed_readings=True)
    before = snapshot()
    with pytest.raises(MeterKeyRequired):
        services.meter_register(actor=producer, device_id=device.pk, serial="M-SIGNED")
    assert snapshot() == before


def test_serial_is_unique(producer, meter, snapshot):
    before = snapshot()
    with pytest.raises(MeterExists):
        services.meter_register(actor=producer, device_id=meter.device_id, serial=meter.serial)
    assert snapshot() == before


def test_someone_elses_device(meter, snapshot):
    outsider = member_of(OrganisationFactory())
    before = snapshot()
    with pytest.raises(NotDeviceOperator):
        services.meter_register(actor=outsider, device_id=meter.device_id, serial="X-1")
    with pytest.raises(NotDeviceOperator):
        services.meter_key_rotate(
            actor=outsider, meter_id=meter.pk, public_key=bytes(signing_key(9).verify_key)
        )
    assert snapshot() == before


def test_key_rotation_keeps_history_and_each_key_verifies_its_period(
    producer, meter, key, stored, snapshot
):
    # given readings signed with the first key
    rotation = hours_ago(10)
    old_rows = [interval_row(meter, hours_ago(h), 500, key=key) for h in range(14, 10, -1)]
    services.readings_submit(actor=producer, rows=iter_mapping_rows(old_rows))
    new_key = signing_key(8)
    before = snapshot()
    # when the key rotates at `rotation`
    services.meter_key_rotate(
        actor=producer, meter_id=meter.pk, public_key=bytes(new_key.verify_key), valid_from=rotation
    )
    after = snapshot()
    assert after["ledger_events"] == before["ledger_events"] + 1
    assert after["MeterKey"] == before["MeterKey"] + 1
    # then the history holds both keys with adjacent validity
    keys = list(MeterKey.objects.filter(meter=meter).order_by("valid_from"))
    assert [k.valid_to for k in keys] == [rotation, None]
    assert keys[1].valid_from == rotation
    assert last_event()["type"] == "meter.key_rotated"
    # readings after the rotation verify with the new key only
    new_rows = [interval_row(meter, hours_ago(h), 500, key=new_key) for h in range(10, 8, -1)]
    assert services.readings_submit(actor=producer, rows=iter_mapping_rows(new_rows)).stored == 2
    stale = [interval_row(meter, hours_ago(8), 500, key=key)]
    with pytest.raises(ReadingsRejected) as caught:
        services.readings_submit(actor=producer, rows=iter_mapping_rows(stale))
    assert caught.value.extra["errors"][0]["code"] == "signature_invalid"
    # a late reading from before the rotation still verifies with the old key
    late = [interval_row(meter, hours_ago(16), 500, key=key)]
    assert services.readings_submit(actor=producer, rows=iter_mapping_rows(late)).stored == 1
    assert stored()[0] == 7


def test_rotation_cannot_start_before_recorded_signed_readings(producer, meter, key, snapshot):
    rows = [interval_row(meter, hours_ago(3), 500, key=key)]
    services.readings_submit(actor=producer, rows=iter_mapping_rows(rows))
    before = snapshot()
    with pytest.raises(MeterKeyConflict):
        services.meter_key_rotate(
            actor=producer,
            meter_id=meter.pk,
            public_key=bytes(signing_key(4).verify_key),
            valid_from=hours_ago(4),
        )
    assert snapshot() == before


def test_counter_reset_sets_an_explicit_baseline(producer, meter, key, snapshot):
    services.readings_submit(
        actor=producer, rows=iter_mapping_rows([counter_row(meter, hours_ago(6), 999_000, key=key)])
    )
    meter.refresh_from_db()
    assert meter.counter_wh == 999_000
    before = snapshot()
    services.meter_counter_reset(
        actor=producer, meter_id=meter.pk, at=hours_ago(5), counter_wh=0, reason="Rollover at 10^6"
    )
    meter.refresh_from_db()
    assert (meter.counter_at, meter.counter_wh) == (hours_ago(5), 0)
    assert snapshot()["ledger_events"] == before["ledger_events"] + 1
    event = last_event()
    assert event["type"] == "meter.counter_reset"
    assert event["data"]["previous"]["counter_wh"] == 999_000
    result = services.readings_submit(
        actor=producer, rows=iter_mapping_rows([counter_row(meter, hours_ago(4), 700, key=key)])
    )
    assert result.stored == 1
    assert meter.readings.get(start=hours_ago(5)).wh == 700


def test_counter_reset_rules(producer, meter, snapshot):
    services.meter_counter_reset(
        actor=producer, meter_id=meter.pk, at=hours_ago(5), counter_wh=10, reason="first"
    )
    before = snapshot()
    with pytest.raises(CounterResetConflict):
        services.meter_counter_reset(
            actor=producer, meter_id=meter.pk, at=hours_ago(6), counter_wh=0, reason="back"
        )
    with pytest.raises(InvalidInput):
        services.meter_counter_reset(
            actor=producer, meter_id=meter.pk, at=hours_ago(2), counter_wh=0, reason=""
        )
    with pytest.raises(InvalidInput):
        services.meter_counter_reset(
            actor=producer,
            meter_id=meter.pk,
            at=hours_ago(2) + dt.timedelta(minutes=30),
            counter_wh=0,
            reason="unaligned",
        )
    assert snapshot() == before


def test_meter_replacement(producer, meter, key, stored, snapshot):
    # given an old counter meter with readings up to the swap
    swap = hours_ago(3)
    rows = [counter_row(meter, hours_ago(h), 1000 * (10 - h), key=key) for h in range(6, 2, -1)]
    services.readings_submit(actor=producer, rows=iter_mapping_rows(rows))
    new_key = signing_key(11)
    before = snapshot()
    # when it is replaced by a new meter starting at 0
    new = services.meter_replace(
        actor=producer,
        meter_id=meter.pk,
        at=swap,
        new_serial="SRC-PV-0002",
        public_key=bytes(new_key.verify_key),
        counter_wh=0,
        reason="Meter failure",
    )
    # then the old one is removed, the new one counts from its baseline
    meter.refresh_from_db()
    assert meter.status == Meter.Status.REMOVED and meter.replaced_by == new
    assert (new.counter_at, new.counter_wh) == (swap, 0)
    after = snapshot()
    assert after["ledger_events"] == before["ledger_events"] + 1
    assert (after["Meter"], after["MeterKey"]) == (before["Meter"] + 1, before["MeterKey"] + 1)
    assert last_event()["type"] == "meter.replaced"
    result = services.readings_submit(
        actor=producer, rows=iter_mapping_rows([counter_row(new, hours_ago(2), 640, key=new_key)])
    )
    assert result.stored == 1
    with pytest.raises(ReadingsRejected) as caught:
        services.readings_submit(
            actor=producer,
            rows=iter_mapping_rows([interval_row(meter, hours_ago(2), 5, key=key)]),
        )
    assert caught.value.extra["errors"][0]["code"] == "after_meter_removed"
    assert stored()[0] == 4


def test_replacement_and_removal_refuse_bad_input(producer, meter, snapshot):
    before = snapshot()
    with pytest.raises(MeterExists):
        services.meter_replace(
            actor=producer, meter_id=meter.pk, at=hours_ago(1), new_serial=meter.serial, reason="r"
        )
    with pytest.raises(InvalidInput):
        services.meter_replace(
            actor=producer, meter_id=meter.pk, at=hours_ago(-2), new_serial="NEW-1", reason="r"
        )
    with pytest.raises(InvalidInput):
        services.meter_remove(actor=producer, meter_id=meter.pk, at=hours_ago(1), reason=" ")
    assert snapshot() == before
    services.meter_remove(actor=producer, meter_id=meter.pk, at=hours_ago(1), reason="Dismantled")
    assert snapshot()["ledger_events"] == before["ledger_events"] + 1
    assert last_event()["type"] == "meter.removed"
    with pytest.raises(MeterStatusConflict):
        services.meter_remove(actor=producer, meter_id=meter.pk, at=hours_ago(1), reason="again")


def test_decommissioned_device_takes_no_new_meters(producer, producer_org, snapshot):
    device = DeviceFactory(organisation=producer_org, status=Device.Status.DECOMMISSIONED)
    before = snapshot()
    with pytest.raises(DeviceStatusConflict):
        services.meter_register(actor=producer, device_id=device.pk, serial="LATE-1")
    assert snapshot() == before
