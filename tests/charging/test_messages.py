"""Reading an OCPP 2.0.1 TransactionEvent: its times, and the energy register samples in
whole Wh."""

import datetime as dt

import pytest

from charging.errors import InvalidTransactionEvent, TransactionEventEnergyInvalid
from charging.messages import transaction_event_parse
from registry.datetimes import DATE_TIME_HINT


def event(value, unit="Wh", multiplier=0) -> dict:
    return {
        "eventType": "Updated",
        "timestamp": "2026-12-01T10:00:00Z",
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 1,
        "transactionInfo": {"transactionId": "T-1"},
        "meterValue": [
            {
                "timestamp": "2026-12-01T10:00:00Z",
                "sampledValue": [
                    {"value": value, "unitOfMeasure": {"unit": unit, "multiplier": multiplier}}
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    ("value", "unit", "multiplier", "wh"),
    [(5, "kWh", 0, 5000), (12, "Wh", 3, 12000), (1500, "Wh", -1, 150), (0, "Wh", 0, 0)],
)
def test_a_sample_is_scaled_by_its_unit_and_multiplier(value, unit, multiplier, wh):
    assert transaction_event_parse(event(value, unit, multiplier)).meter_wh[0][1] == wh


@pytest.mark.parametrize(
    ("value", "multiplier"),
    [
        (-3.164350125832192e73, 584031193),  # the fuzzer's (seed 13): decimal.Overflow, a 500
        (5, 10**6),
        (2**53, 0),  # beyond what the energy columns hold exactly
        (1.5, 0),
        (-1, 0),
    ],
)
def test_a_sample_out_of_range_is_refused_with_its_code(value, multiplier):
    with pytest.raises(TransactionEventEnergyInvalid) as refused:
        transaction_event_parse(event(value, "Wh", multiplier))
    assert refused.value.extra["fields"] == {
        "meterValue[0].sampledValue[0]": ["a whole, non-negative Wh value below 2**53"]
    }


@pytest.mark.parametrize(
    ("where", "time"),
    [
        ("timestamp", "0001-01-01T00:00:00+19:00"),  # before year 1 in UTC
        ("timestamp", "2026-12-01 10:00:00Z"),  # a space for the T
        ("meterValue[0].timestamp", "9999-12-31T23:00:00-05:00"),  # after 9999 in UTC
        ("meterValue[0].timestamp", "2026-12-01T10:00:00+16:00"),
    ],
)
def test_a_time_outside_the_schemas_pattern_is_refused_with_the_hint(where, time):
    message = event(5)
    if where == "timestamp":
        message["timestamp"] = time
    else:
        message["meterValue"][0]["timestamp"] = time
    with pytest.raises(InvalidTransactionEvent) as refused:
        transaction_event_parse(message)
    assert refused.value.extra["fields"] == {where: [DATE_TIME_HINT]}


def test_a_time_at_the_edge_of_the_range_is_taken_in_utc():
    message = {**event(5), "timestamp": "8999-12-31T23:59:59-15:59"}
    taken = transaction_event_parse(message).timestamp
    assert taken == dt.datetime(9000, 1, 1, 15, 58, 59, tzinfo=dt.UTC)
