"""Readings that meters publish over MQTT, ingested through the same service as uploads.

A message on `<prefix>/<serial>/readings` holds one reading object or an array of them,
in the JSON shape of `POST /api/v1/readings/`, every row of that meter and signed by its
key: the topic proves nothing (anyone who can publish could use it), the signature does.
The batch is submitted for the meter's organisation by one of its operators, so the
pipeline's checks, idempotency (a re-delivered message stores nothing twice) and review
rules are those of an HTTP upload. Anything else becomes a dead letter; nothing is half
written because `readings_submit` stores a batch whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.utils import timezone

from accounts.models import Membership
from assets.models import Meter
from assets.readings_io import iter_mapping_rows
from assets.services import readings_submit
from consumers.models import GatewayDeadLetter
from registry.errors import DomainError

MAX_PAYLOAD = 1024 * 1024
KEPT_PAYLOAD = 64 * 1024


@dataclass(frozen=True)
class GatewayOutcome:
    """What became of one message: stored readings, duplicates, or a dead letter."""

    status: str  # "accepted", "held", "unchanged" or "dead_letter"
    stored: int = 0
    duplicates: int = 0
    reason: str = ""


class _Refused(Exception):
    def __init__(self, reason: str, detail: str = "", serial: str = "") -> None:
        super().__init__(detail)
        self.reason, self.detail, self.serial = reason, detail, serial


def _serial_of(topic: str, prefix: str) -> str:
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head) or not topic.endswith("/readings"):
        raise _Refused("wrong_topic", f"expected {head}<serial>/readings")
    serial = topic[len(head) : -len("/readings")]
    if not serial or "/" in serial:
        raise _Refused("wrong_topic", f"expected {head}<serial>/readings")
    return serial


def _rows(payload: bytes, serial: str) -> list[dict]:
    if len(payload) > MAX_PAYLOAD:
        raise _Refused("too_large", f"{len(payload)} bytes", serial)
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refused("garbage", f"not JSON: {exc}", serial) from None
    rows = data if isinstance(data, list) else [data]
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise _Refused("garbage", "expected a reading object or an array of them", serial)
    others = sorted({str(row.get("meter")) for row in rows} - {serial})
    if others:
        raise _Refused("wrong_topic", f"rows of other meters: {others[:5]}", serial)
    if not all(row.get("signature") for row in rows):
        raise _Refused("unsigned", "readings over MQTT must be signed by the meter", serial)
    return rows


def _submitter(serial: str):
    meter = Meter.objects.select_related("device").filter(serial=serial).first()
    if meter is None:
        raise _Refused("unknown_meter", "", serial)
    membership = (
        Membership.objects.filter(
            organisation_id=meter.device.organisation_id,
            role__in=[Membership.Role.ADMIN, Membership.Role.OPERATOR],
        )
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if membership is None:
        raise _Refused("no_submitter", "the meter's organisation has no operator", serial)
    return membership.user


def gateway_dead_letter_record(
    *, topic: str, payload: bytes, reason: str, detail: str = "", serial: str = "", now=None
) -> GatewayDeadLetter:
    """Keep a message the gateway refused (an operational record, no ledger event)."""
    return GatewayDeadLetter.objects.create(
        topic=topic[:300],
        payload=bytes(payload[:KEPT_PAYLOAD]),
        reason=reason[:64],
        detail=detail[:4000],
        meter_serial=serial[:64],
        received_at=now or timezone.now(),
    )


def gateway_message_ingest(
    *, topic: str, payload: bytes, prefix: str, now: dt.datetime | None = None
) -> GatewayOutcome:
    """Ingest one MQTT message, or record it as a dead letter; never raises a DomainError."""
    serial = ""
    try:
        serial = _serial_of(topic, prefix)
        rows = _rows(payload, serial)
        actor = _submitter(serial)
        result = readings_submit(actor=actor, rows=iter_mapping_rows(rows), now=now)
    except _Refused as exc:
        gateway_dead_letter_record(
            topic=topic,
            payload=payload,
            reason=exc.reason,
            detail=exc.detail,
            serial=exc.serial or serial,
            now=now,
        )
        return GatewayOutcome("dead_letter", reason=exc.reason)
    except DomainError as exc:
        detail = f"{exc.detail} {json.dumps(exc.extra, default=str)[:3000]}"
        gateway_dead_letter_record(
            topic=topic, payload=payload, reason=exc.code, detail=detail, serial=serial, now=now
        )
        return GatewayOutcome("dead_letter", reason=exc.code)
    return GatewayOutcome(result.status, stored=result.stored, duplicates=result.duplicates)
