"""Stations, tariffs and driver tokens: registration, one ledger event each."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Membership, Organisation, User
from accounts.permissions import user_can_act_for
from assets.models import Device, Meter
from charging import errors, events, messages, tariffs
from charging.models import ChargingStation, DriverToken, Tariff
from charging.services.common import require_operator
from ledger.services import ledger_append
from registry.errors import NotFound

ID_TOKEN_TYPES = (
    "Central",
    "eMAID",
    "ISO14443",
    "ISO15693",
    "KeyCode",
    "Local",
    "MacAddress",
    "NoAuthorization",
)


def _organisation_for(actor: User, organisation_id: int) -> Organisation:
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None:
        raise NotFound("No such organisation.", organisation_id=organisation_id)
    if not user_can_act_for(actor, organisation, role=Membership.Role.OPERATOR):
        raise errors.NotStationOperator("You do not act for this organisation.")
    return organisation


@transaction.atomic
def tariff_create(*, actor: User, organisation_id: int, currency: str, elements: Any) -> Tariff:
    """Create an OCPI tariff for a charge point operator; refuse negative prices."""
    organisation = _organisation_for(actor, organisation_id)
    clean = tariffs.tariff_elements_clean(elements, currency)
    tariff = Tariff.objects.create(organisation=organisation, currency=currency, elements=clean)
    ledger_append(
        kind=events.TARIFF_CREATED,
        actor=actor,
        subject=[tariff, organisation],
        data=events.tariff_created(tariff),
    )
    return tariff


@transaction.atomic
def station_register(
    *,
    actor: User,
    device_id: int,
    meter_serial: str,
    evse_id: str,
    tariff_id: int,
    ocmf_public_key: str = "",
) -> ChargingStation:
    """Make a device with a consumption (charger) meter a charging station with its tariff."""
    device = Device.objects.select_related("organisation").filter(pk=device_id).first()
    if device is None:
        raise errors.InvalidStation("No such device.", fields={"device": ["not found"]})
    station = ChargingStation(device=device)
    require_operator(actor, station)
    meter = Meter.objects.filter(serial=meter_serial, device=device).first()
    if meter is None or meter.kind != Meter.Kind.CONSUMPTION or meter.status != "active":
        raise errors.InvalidStation(
            "The charger meter must be an active consumption meter of the device.",
            fields={"meter_serial": ["an active consumption meter of the device"]},
        )
    tariff = Tariff.objects.filter(pk=tariff_id, organisation=device.organisation).first()
    if tariff is None:
        raise errors.TariffNotFound(tariff_id=tariff_id)
    if ocmf_public_key:
        messages.ocmf_public_key_check(ocmf_public_key)
    if ChargingStation.objects.filter(device=device).exists() or (
        ChargingStation.objects.filter(meter=meter).exists()
        or ChargingStation.objects.filter(evse_id=evse_id).exists()
    ):
        raise errors.StationExists(device_id=device.pk, evse_id=evse_id)
    station = ChargingStation.objects.create(
        device=device, meter=meter, evse_id=evse_id, tariff=tariff, ocmf_public_key=ocmf_public_key
    )
    ledger_append(
        kind=events.STATION_REGISTERED,
        actor=actor,
        subject=[station, device, meter, tariff],
        data=events.station_registered(station),
    )
    return station


@transaction.atomic
def driver_token_register(
    *, actor: User, organisation_id: int, id_token: str, type: str
) -> DriverToken:
    """Register an idToken (card, app user) whose sessions bill to the organisation."""
    organisation = _organisation_for(actor, organisation_id)
    if type not in ID_TOKEN_TYPES or not id_token or len(id_token) > 36:
        raise errors.InvalidTransactionEvent(
            "Unknown idToken.", fields={"type": list(ID_TOKEN_TYPES), "id_token": ["1-36 chars"]}
        )
    if DriverToken.objects.filter(id_token=id_token, type=type).exists():
        raise errors.TokenExists(id_token=id_token, type=type)
    token = DriverToken.objects.create(organisation=organisation, id_token=id_token, type=type)
    ledger_append(
        kind=events.TOKEN_REGISTERED,
        actor=actor,
        subject=[token, organisation],
        data=events.token_registered(token),
    )
    return token
