"""Charging sessions from OCPP TransactionEvents and OCMF records, and their bills.

Locking: the station row first (`locks.station_lock`), so every message of one station
queues behind the one before it; two stop events for one session therefore bill once
(the second finds the session billed). A refusal raises before anything is written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from charging import errors, events, locks, messages, tariffs
from charging.models import (
    Bill,
    ChargingSession,
    ChargingStation,
    DriverToken,
    MeterSample,
    SessionMessage,
)
from charging.services.common import bill_settle, require_operator
from ledger.services import ledger_append

MAX_SESSION = dt.timedelta(days=31)
"""How long a session may last: billing splits it into clock hours (744 at most), and a
session from year 1000 to 8999 would have made seventy million of them in memory."""


def _check_span(start: dt.datetime, samples: list[tuple[dt.datetime, int]]) -> None:
    if samples and samples[-1][0] - start > MAX_SESSION:
        raise errors.SessionTooLong(started_at=start.isoformat(), at=samples[-1][0].isoformat())


def _check_samples(
    session_last: tuple[dt.datetime, int] | None, samples: list[tuple[dt.datetime, int]]
) -> None:
    before = session_last
    for at, wh in samples:
        if before is not None:
            if wh < before[1]:
                raise errors.MeterDecreasing(previous_wh=before[1], value_wh=wh)
            if at < before[0]:
                raise errors.EventTimeBackwards(previous=before[0].isoformat(), at=at.isoformat())
        before = (at, wh)


def _bill(session: ChargingSession, station: ChargingStation) -> Bill:
    samples = list(
        MeterSample.objects.filter(session=session)
        .order_by("at", "id")
        .values_list("at", "meter_wh")
    )
    periods = tariffs.hourly_periods([(at.astimezone(dt.UTC), wh) for at, wh in samples])
    tariff = station.tariff
    priced = tariffs.price_periods(
        elements=tariff.elements,
        currency=tariff.currency,
        periods=periods,
        time_zone=station.device.grid_area.time_zone,
    )
    bill = Bill.objects.create(
        session=session,
        tariff=tariff,
        billed_organisation_id=session.driver_organisation_id,
        currency=tariff.currency,
        energy_wh=session.meter_last_wh - session.meter_start_wh,
        charging_seconds=int((session.ended_at - session.started_at).total_seconds()),
        energy_minor=priced.energy_minor,
        time_minor=priced.time_minor,
        flat_minor=priced.flat_minor,
        total_minor=priced.total_minor,
        periods=priced.periods,
        billed_at=timezone.now(),
    )
    bill_settle(bill)
    return bill


def _token(id_token: str | None, type: str | None) -> DriverToken:
    tokens = DriverToken.objects.filter(id_token=id_token or "")
    if type is not None:
        tokens = tokens.filter(type=type)
    token = tokens.order_by("pk").first()
    if token is None:
        raise errors.UnknownToken(id_token=id_token, type=type)
    return token


def _add_samples(
    session: ChargingSession, seq_no: int, samples: list[tuple[dt.datetime, int]]
) -> None:
    MeterSample.objects.bulk_create(
        [MeterSample(session=session, seq_no=seq_no, at=at, meter_wh=wh) for at, wh in samples]
    )


@transaction.atomic
def transaction_event_record(*, actor: User, station_id: int, message: Any) -> ChargingSession:
    """Apply one OCPP 2.0.1 TransactionEvent request (Started / Updated / Ended).

    Ended bills the session in the same transaction (one `charging.session_billed` event).
    """
    event = messages.transaction_event_parse(message)
    station = locks.station_lock(station_id)
    require_operator(actor, station)
    session = (
        ChargingSession.objects.select_for_update()
        .filter(station=station, transaction_id=event.transaction_id)
        .first()
    )
    samples = event.meter_wh
    if event.event_type == "Started":
        if session is not None:
            raise errors.SessionAlreadyStarted(transaction_id=event.transaction_id)
        if not samples:
            raise errors.InvalidTransactionEvent(
                f"Started needs the energy register (meterValue with {messages.ENERGY_REGISTER}).",
                fields={"meterValue": ["required"]},
            )
        _check_samples(None, samples)
        _check_span(samples[0][0], samples)
        token = _token(event.id_token, event.id_token_type)
        session = ChargingSession.objects.create(
            station=station,
            transaction_id=event.transaction_id,
            source=ChargingSession.Source.OCPP,
            token=token,
            driver_organisation_id=token.organisation_id,
            started_at=samples[0][0],
            meter_start_wh=samples[0][1],
            meter_last_wh=samples[-1][1],
            last_seq_no=event.seq_no,
            last_event_at=samples[-1][0],
        )
        SessionMessage.objects.create(
            session=session, seq_no=event.seq_no, event_type="Started", timestamp=event.timestamp
        )
        _add_samples(session, event.seq_no, samples)
        ledger_append(
            kind=events.SESSION_STARTED,
            actor=actor,
            subject=[session, station, token],
            data=events.session_data(session, [(event.seq_no, at, wh) for at, wh in samples]),
        )
        return session

    if session is None:
        if event.event_type == "Ended":
            raise errors.StopWithoutStart(transaction_id=event.transaction_id)
        raise errors.TransactionNotStarted(transaction_id=event.transaction_id)
    if session.status != ChargingSession.Status.ACTIVE:
        raise errors.SessionEnded(session_id=session.pk)
    if SessionMessage.objects.filter(session=session, seq_no=event.seq_no).exists():
        raise errors.DuplicateSeqNo(session_id=session.pk, seq_no=event.seq_no)
    _check_samples((session.last_event_at, session.meter_last_wh), samples)
    _check_span(session.started_at, samples)
    if event.event_type == "Ended" and not samples:
        raise errors.InvalidTransactionEvent(
            "Ended needs the final energy register.", fields={"meterValue": ["required"]}
        )
    SessionMessage.objects.create(
        session=session, seq_no=event.seq_no, event_type=event.event_type, timestamp=event.timestamp
    )
    _add_samples(session, event.seq_no, samples)
    changed = ["last_seq_no"]
    session.last_seq_no = max(session.last_seq_no, event.seq_no)
    if samples:
        session.meter_last_wh, session.last_event_at = samples[-1][1], samples[-1][0]
        changed += ["meter_last_wh", "last_event_at"]
    added = [(event.seq_no, at, wh) for at, wh in samples]
    if event.event_type == "Updated":
        session.save(update_fields=changed)
        ledger_append(
            kind=events.METER_VALUES_RECORDED,
            actor=actor,
            subject=[session],
            data=events.session_data(session, added),
        )
        return session
    session.status = ChargingSession.Status.BILLED
    session.ended_at = session.last_event_at
    session.save(update_fields=[*changed, "status", "ended_at"])
    bill = _bill(session, station)
    ledger_append(
        kind=events.SESSION_BILLED,
        actor=actor,
        subject=[session, bill, station],
        data=events.session_data(session, added) | {"bill": events.bill_data(bill)},
    )
    return session


@transaction.atomic
def ocmf_session_record(*, actor: User, station_id: int, record: str) -> ChargingSession:
    """Record and bill a whole session from one signed OCMF record (begin and end readings)."""
    station = locks.station_lock(station_id)
    require_operator(actor, station)
    if not station.ocmf_public_key:
        raise errors.InvalidStation(
            "The station has no OCMF public key registered.",
            fields={"ocmf_public_key": ["required for OCMF"]},
        )
    verified = messages.ocmf_verify(record, public_key=station.ocmf_public_key)
    if ChargingSession.objects.filter(
        station=station, transaction_id=verified.transaction_id
    ).exists():
        raise errors.SessionAlreadyStarted(transaction_id=verified.transaction_id)
    token = _token(verified.id_token, None)
    (begin_at, begin_wh), (end_at, end_wh) = verified.begin, verified.end
    _check_span(begin_at, [verified.end])
    session = ChargingSession.objects.create(
        station=station,
        transaction_id=verified.transaction_id,
        source=ChargingSession.Source.OCMF,
        token=token,
        driver_organisation_id=token.organisation_id,
        status=ChargingSession.Status.BILLED,
        started_at=begin_at,
        ended_at=end_at,
        meter_start_wh=begin_wh,
        meter_last_wh=end_wh,
        last_seq_no=1,
        last_event_at=end_at,
        ocmf=record,
    )
    _add_samples(session, 0, [verified.begin])
    _add_samples(session, 1, [verified.end])
    bill = _bill(session, station)
    ledger_append(
        kind=events.SESSION_BILLED,
        actor=actor,
        subject=[session, bill, station, token],
        data=events.session_data(session, [(0, begin_at, begin_wh), (1, end_at, end_wh)])
        | {"bill": events.bill_data(bill)},
    )
    return session
