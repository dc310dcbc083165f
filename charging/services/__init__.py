"""Every write of the charging app (one ledger event per call, see each module)."""

from charging.services.common import (
    BILL_SETTLERS,
    bill_pay,
    bill_settle,
    bills_settle_pending,
)
from charging.services.receipts import session_match
from charging.services.sessions import ocmf_session_record, transaction_event_record
from charging.services.stations import driver_token_register, station_register, tariff_create

__all__ = [
    "BILL_SETTLERS",
    "bill_pay",
    "bill_settle",
    "bills_settle_pending",
    "driver_token_register",
    "ocmf_session_record",
    "session_match",
    "station_register",
    "tariff_create",
    "transaction_event_record",
]
