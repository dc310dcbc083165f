"""OCPP 2.0.1 TransactionEvents: a session from Started to Ended (billed), and refusals."""

import datetime as dt

import pytest

from charging import services
from charging.models import Bill, ChargingSession
from tests.charging.factories import DAY, charge, charging_world, tx_event
from tests.factories import OrganisationFactory, member_of
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db
START = DAY + dt.timedelta(hours=10, minutes=30)


def _record(world, message, actor=None):
    return services.transaction_event_record(
        actor=actor or world.operator, station_id=world.station.pk, message=message
    )


def test_started_updated_ended_bills_the_session_by_its_tariff():
    # given
    world = charging_world()
    before = last_event_id()

    # when: 10:30 -> 12:00, 1000 -> 23_000 Wh
    session = charge(world, start=START, readings=[(0, 1000), (30, 8000), (90, 23_000)])

    # then: 22 kWh * 30 ct = 660, 1.5 h * 120 ct = 180, flat 50
    bill = Bill.objects.get(session=session)
    assert session.status == ChargingSession.Status.BILLED
    assert session.driver_organisation == world.driver
    assert (bill.energy_wh, bill.charging_seconds) == (22_000, 5400)
    assert (bill.energy_minor, bill.time_minor, bill.flat_minor) == (660, 180, 50)
    assert bill.total_minor == 890
    assert bill.billed_organisation == world.driver
    assert [p["energy_wh"] for p in bill.periods] == [7000, 15_000]
    kinds = [e["type"] for e in events_since(before)]
    assert kinds == [
        "charging.session_started",
        "charging.meter_values_recorded",
        "charging.session_billed",
    ]
    billed = events_since(before)[-1]
    assert {f"charging_session:{session.pk}", f"charging_bill:{bill.pk}"} <= set(billed["subject"])
    assert billed["data"]["bill"]["total_minor"] == 890


def test_decreasing_meter_values_are_refused(refused):
    # given
    world = charging_world()
    _record(world, tx_event("Started", 0, START, 5000))

    # when / then
    refused(
        lambda: _record(world, tx_event("Updated", 1, START + dt.timedelta(minutes=5), 4999)),
        "meter_value_decreasing",
        400,
    )


def test_a_stop_without_a_start_is_refused(refused):
    world = charging_world()
    refused(
        lambda: _record(world, tx_event("Ended", 3, START, 5000, transaction_id="nope")),
        "stop_without_start",
        409,
    )


def test_a_repeated_seq_no_is_refused(refused):
    # given
    world = charging_world()
    _record(world, tx_event("Started", 0, START, 5000))
    _record(world, tx_event("Updated", 1, START + dt.timedelta(minutes=5), 6000))

    # when / then
    refused(
        lambda: _record(world, tx_event("Updated", 1, START + dt.timedelta(minutes=6), 6500)),
        "duplicate_seq_no",
        409,
    )


def test_an_event_for_another_organisations_station_is_refused(refused):
    # given
    world = charging_world()
    stranger = member_of(OrganisationFactory())

    # when / then
    refused(
        lambda: _record(world, tx_event("Started", 0, START, 5000), actor=stranger),
        "not_station_operator",
        403,
    )


def test_a_message_outside_the_ocpp_schema_is_refused(refused):
    # given: no triggerReason, seqNo as a string
    world = charging_world()
    message = tx_event("Started", 0, START, 5000)
    del message["triggerReason"]
    message["seqNo"] = "0"

    # when
    error = refused(lambda: _record(world, message), "invalid_transaction_event", 400)

    # then
    assert "seqNo" in error.extra["fields"]


def test_an_unknown_id_token_is_refused(refused):
    world = charging_world()
    refused(
        lambda: _record(world, tx_event("Started", 0, START, 5000, id_token="UNKNOWN")),
        "unknown_id_token",
        400,
    )


def test_an_event_after_the_session_was_billed_is_refused(refused):
    # given
    world = charging_world()
    charge(world, start=START, readings=[(0, 1000), (60, 9000)])

    # when / then
    refused(
        lambda: _record(world, tx_event("Ended", 7, START + dt.timedelta(hours=2), 9500)),
        "session_ended",
        409,
    )


@pytest.mark.parametrize("timestamp", ["2024-01-01T12:99:00Z", "2024-02-30T10:00:00Z", "soon"])
def test_an_impossible_or_unreadable_timestamp_is_refused(refused, timestamp):
    # given: the schema fuzzer's "12:99" (well formed, no such minute), and others
    world = charging_world()
    message = tx_event("Started", 0, START, 5000)
    message["timestamp"] = timestamp

    # when
    error = refused(lambda: _record(world, message), "invalid_transaction_event", 400)

    # then
    assert "timestamp" in error.extra["fields"]
