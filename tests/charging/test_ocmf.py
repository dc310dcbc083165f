"""OCMF signed meter data: verified with pyocmf against the station's key, or refused."""

import datetime as dt

import pytest

from charging import services
from charging.models import ChargingSession
from tests.charging.factories import DAY, charging_world, ocmf_key, ocmf_record
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db
BEGIN = DAY + dt.timedelta(hours=9, minutes=15)
END = DAY + dt.timedelta(hours=10, minutes=45)


def _upload(world, record):
    return services.ocmf_session_record(
        actor=world.operator, station_id=world.station.pk, record=record
    )


def test_a_signed_record_becomes_a_billed_session():
    # given
    world = charging_world()
    record = ocmf_record(world.ocmf_private, begin=(BEGIN, "1.234"), end=(END, "23.456"))
    before = last_event_id()

    # when
    session = _upload(world, record)

    # then: 22.222 kWh over 1.5 h
    assert session.source == ChargingSession.Source.OCMF
    assert session.status == ChargingSession.Status.BILLED
    assert session.bill.energy_wh == 22_222
    assert session.bill.charging_seconds == 5400
    assert session.bill.energy_minor == 667  # 22.222 * 30 = 666.66 -> 667
    assert [e["type"] for e in events_since(before)] == ["charging.session_billed"]


def test_a_record_signed_with_another_key_is_refused(refused):
    world = charging_world()
    other, _public = ocmf_key()
    record = ocmf_record(other, begin=(BEGIN, "1.0"), end=(END, "2.0"))
    refused(lambda: _upload(world, record), "ocmf_bad_signature", 400)


@pytest.mark.parametrize("end_kwh", ["9E+999999", "1E+30", "-1"])
def test_a_reading_beyond_what_energy_columns_hold_is_refused(refused, end_kwh):
    """A signed record whose end reading overflowed Decimal (9E+999999 kWh) or the bigint
    columns (1E+30 kWh) answered 500."""
    world = charging_world()
    record = ocmf_record(world.ocmf_private, begin=(BEGIN, "1.0"), end=(END, end_kwh))
    refused(lambda: _upload(world, record), "ocmf_invalid", 400)


def test_a_tampered_record_is_refused(refused):
    world = charging_world()
    record = ocmf_record(world.ocmf_private, begin=(BEGIN, "1.0"), end=(END, "2.0"))
    refused(lambda: _upload(world, record.replace("2.0", "9.0")), "ocmf_bad_signature", 400)


@pytest.mark.parametrize("record", ["1.0;2.0", "OCMF|{}", 'OCMF|{"FV":"1.0"}|{"SA":"x"}'])
def test_unsigned_records_are_refused(refused, record):
    world = charging_world()
    refused(lambda: _upload(world, record), "ocmf_unsigned", 400)


def test_an_unsigned_but_well_formed_record_is_refused(refused):
    world = charging_world()
    record = ocmf_record(world.ocmf_private, begin=(BEGIN, "1.0"), end=(END, "2.0"), sign=False)
    refused(lambda: _upload(world, record), "ocmf_unsigned", 400)


def test_the_same_record_twice_is_refused(refused):
    world = charging_world()
    record = ocmf_record(world.ocmf_private, begin=(BEGIN, "1.0"), end=(END, "2.0"))
    _upload(world, record)
    refused(lambda: _upload(world, record), "session_already_started", 409)


def test_a_decreasing_signed_record_is_refused(refused):
    world = charging_world()
    record = ocmf_record(world.ocmf_private, begin=(BEGIN, "5.0"), end=(END, "2.0"))
    refused(lambda: _upload(world, record), "meter_value_decreasing", 400)
