"""The data of charging ledger events: one builder per kind (ledger/EVENTS.md, "charging")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charging.models import Bill, ChargingSession, ChargingStation, DriverToken, Tariff

STATION_REGISTERED = "charging.station_registered"
TARIFF_CREATED = "charging.tariff_created"
TOKEN_REGISTERED = "charging.token_registered"  # noqa: S105 (an event kind)
SESSION_STARTED = "charging.session_started"
METER_VALUES_RECORDED = "charging.meter_values_recorded"
SESSION_BILLED = "charging.session_billed"
SESSION_MATCHED = "charging.session_matched"


def station_registered(station: ChargingStation) -> dict[str, Any]:
    return {
        "station_id": station.pk,
        "device_id": station.device_id,
        "meter_id": station.meter_id,
        "evse_id": station.evse_id,
        "tariff_id": station.tariff_id,
        "ocmf_public_key": station.ocmf_public_key,
    }


def tariff_created(tariff: Tariff) -> dict[str, Any]:
    return {
        "tariff_id": tariff.pk,
        "organisation_id": tariff.organisation_id,
        "currency": tariff.currency,
        "elements": tariff.elements,
    }


def token_registered(token: DriverToken) -> dict[str, Any]:
    return {
        "token_id": token.pk,
        "organisation_id": token.organisation_id,
        "id_token": token.id_token,
        "type": token.type,
    }


def session_data(session: ChargingSession, samples: list[tuple[Any, int, int]]) -> dict[str, Any]:
    """The session and the samples this event added: [seq_no, time, meter Wh]."""
    return {
        "session_id": session.pk,
        "station_id": session.station_id,
        "transaction_id": session.transaction_id,
        "source": session.source,
        "driver_organisation_id": session.driver_organisation_id,
        "token_id": session.token_id,
        "samples": [[seq, at, wh] for seq, at, wh in samples],
    }


def bill_data(bill: Bill) -> dict[str, Any]:
    return {
        "bill_id": bill.pk,
        "tariff_id": bill.tariff_id,
        "billed_organisation_id": bill.billed_organisation_id,
        "currency": bill.currency,
        "energy_wh": bill.energy_wh,
        "charging_seconds": bill.charging_seconds,
        "energy_minor": bill.energy_minor,
        "time_minor": bill.time_minor,
        "flat_minor": bill.flat_minor,
        "total_minor": bill.total_minor,
        "periods": bill.periods,
    }
