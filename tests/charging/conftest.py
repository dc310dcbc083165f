import pytest

from charging.models import (
    Bill,
    ChargingSession,
    ChargingStation,
    DriverToken,
    MeterSample,
    Receipt,
    ReceiptHour,
    SessionMessage,
    Tariff,
)
from registry.errors import DomainError
from tests.registry.support import events_since, last_event_id, row_counts

MODELS = (
    Tariff,
    ChargingStation,
    DriverToken,
    ChargingSession,
    SessionMessage,
    MeterSample,
    Bill,
    Receipt,
    ReceiptHour,
)


@pytest.fixture
def refused():
    """Run `call`, expect the domain error `code` and `status`, and check nothing was written."""

    def check(call, code: str, status: int) -> DomainError:
        before_rows, before_event = row_counts(*MODELS), last_event_id()
        with pytest.raises(DomainError) as info:
            call()
        assert (info.value.code, info.value.status) == (code, status), info.value.detail
        assert row_counts(*MODELS) == before_rows
        assert events_since(before_event) == []
        return info.value

    return check
