"""assets.locks: rows locked in primary-key order, a meter's device before the meter."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assets import locks
from assets.errors import DeviceNotFound, MeterNotFound
from assets.models import Device, Meter
from tests.assets.factories import DeviceFactory, MeterFactory

pytestmark = pytest.mark.django_db


def _locking(sql: str) -> bool:
    # SQLite has no row locks: Django leaves FOR UPDATE out of its SQL there.
    return "FOR UPDATE" in sql or connection.vendor != "postgresql"


def test_devices_are_locked_in_primary_key_order(device, grid_area, producer_org):
    # given
    others = [DeviceFactory(organisation=producer_org, grid_area=grid_area) for _ in range(2)]
    wanted = [others[1].pk, device.pk, others[0].pk, 10**9]
    # when
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = locks.devices_lock(wanted)
    # then
    assert list(locked) == sorted([device.pk, others[0].pk, others[1].pk])
    (query,) = queries.captured_queries
    assert 'ORDER BY "assets_device"."id" ASC' in query["sql"]
    assert _locking(query["sql"])


def test_meters_are_locked_in_primary_key_order(device, meter):
    # given
    second = MeterFactory(device=device, serial="SRC-PV-0002")
    # when
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = locks.meters_lock([second.pk, meter.pk])
    # then
    assert list(locked) == sorted([meter.pk, second.pk])
    (query,) = queries.captured_queries
    assert 'ORDER BY "assets_meter"."id" ASC' in query["sql"]
    assert _locking(query["sql"])


def test_a_meter_is_locked_after_its_device(meter):
    # when
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        device, locked = locks.meter_lock(meter.pk)
    # then
    assert (device.pk, locked.pk) == (meter.device_id, meter.pk)
    tables = [
        table
        for query in queries.captured_queries
        if _locking(query["sql"])
        for table in (Device._meta.db_table, Meter._meta.db_table)
        if query["sql"].split(" WHERE ")[0].endswith(f'FROM "{table}"')
    ]
    assert tables[-2:] == [Device._meta.db_table, Meter._meta.db_table]


def test_unknown_rows_are_refused_with_not_found():
    # when / then
    with transaction.atomic():
        with pytest.raises(DeviceNotFound):
            locks.device_lock(10**9)
        with pytest.raises(MeterNotFound):
            locks.meter_lock(10**9)
        assert locks.reading_batch_lock(10**9) is None
        assert locks.grid_area_lock(10**9) is None
