"""The OCPI 2.2.1 Charge Detail Record of a billed session (module "cdrs", object CDR).

Amounts are the bill's integer minor units written as decimals in the tariff's currency
(OCPI `Price`: `excl_vat`; VAT is not computed by the registry). Volumes follow OCPI:
ENERGY in kWh, TIME in hours. `country_code` / `party_id` identify the CPO; the party id is
the `CHARGING_OCPI_PARTY_ID` setting (three characters).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings

from charging.models import Bill, ChargingSession
from charging.tariffs import currency_exponent

OCPI_TOKEN_TYPES = {"ISO14443": "RFID", "ISO15693": "RFID", "eMAID": "APP_USER"}


def _money(minor: int, currency: str) -> dict[str, float]:
    value = Decimal(minor).scaleb(-currency_exponent(currency))
    return {"excl_vat": float(value)}


def _kwh(wh: int) -> float:
    return float(Decimal(wh) / 1000)


def _hours(seconds: int) -> float:
    return float(round(Decimal(seconds) / 3600, 6))


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _signed_data(session: ChargingSession) -> dict[str, Any] | None:
    if not session.ocmf:
        return None
    values = [{"nature": "Session", "plain_data": "", "signed_data": session.ocmf}]
    return {
        "encoding_method": "OCMF",
        "public_key": session.station.ocmf_public_key,
        "signed_values": values,
    }


def tariff_ocpi(bill: Bill, country: str, party: str) -> dict[str, Any]:
    tariff = bill.tariff
    return {
        "country_code": country,
        "party_id": party,
        "id": str(tariff.pk),
        "currency": tariff.currency,
        "elements": tariff.elements,
        "last_updated": _time(tariff.created_at),
    }


def session_cdr(session: ChargingSession) -> dict[str, Any]:
    """The CDR of a billed session, as a JSON-ready dict."""
    bill = session.bill
    station = session.station
    device = station.device
    cpo = device.organisation
    party = settings.CHARGING_OCPI_PARTY_ID
    periods = [
        {
            "start_date_time": period["start"].replace("+00:00", "Z"),
            "dimensions": [
                {"type": "ENERGY", "volume": _kwh(period["energy_wh"])},
                {"type": "TIME", "volume": _hours(period["seconds"])},
            ],
            "tariff_id": str(bill.tariff_id),
        }
        for period in bill.periods
    ]
    return {
        "country_code": cpo.country,
        "party_id": party,
        "id": f"GP-CDR-{bill.pk}",
        "start_date_time": _time(session.started_at),
        "end_date_time": _time(session.ended_at),
        "session_id": session.transaction_id,
        "cdr_token": {
            "country_code": session.driver_organisation.country,
            "party_id": party,
            "uid": session.token.id_token,
            "type": OCPI_TOKEN_TYPES.get(session.token.type, "OTHER"),
            "contract_id": session.token.id_token,
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": str(station.pk),
            "name": device.name,
            "address": "",
            "city": "",
            "country": device.grid_area.country,
            "coordinates": {"latitude": str(device.latitude), "longitude": str(device.longitude)},
            "evse_uid": station.evse_id,
            "evse_id": station.evse_id,
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "meter_id": station.meter.serial,
        "currency": bill.currency,
        "tariffs": [tariff_ocpi(bill, cpo.country, party)],
        "charging_periods": periods,
        "signed_data": (
            {
                "encoding_method": "OCMF",
                "signed_values": [{"nature": "Session", "signed_data": session.ocmf}],
            }
            if session.ocmf
            else None
        ),
        "total_cost": _money(bill.total_minor, bill.currency),
        "total_fixed_cost": _money(bill.flat_minor, bill.currency),
        "total_energy": _kwh(bill.energy_wh),
        "total_energy_cost": _money(bill.energy_minor, bill.currency),
        "total_time": _hours(bill.charging_seconds),
        "total_time_cost": _money(bill.time_minor, bill.currency),
        "last_updated": _time(bill.billed_at),
    }
