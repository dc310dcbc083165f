"""Reading an OCPP 2.0.1 TransactionEvent: the energy register samples in whole Wh."""

import pytest

from charging.errors import TransactionEventEnergyInvalid
from charging.messages import transaction_event_parse


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
