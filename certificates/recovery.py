"""Rebuilding the certificate tables from recovered entries (ledger/recovery.py).

A lost tail taken back from a peer's mirror changes the tables as the services did when
they wrote it: the same ids, the same units, the same accounts, the times of the events.
Transfers (single and batch, completed or waiting for the receiver) and the receiver's or
sender's decisions on them carry every fact their rows hold, so they are rebuilt here.
A retirement is not: its beneficiary, consumption period and location stay out of the
ledger (only their salted commitment is in it), so a tail holding one is refused. Each
event is checked against the rows it starts from (the bundle active and held by the
sender, the units it names its first ones); a difference refuses the whole recovery.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from certificates import events
from certificates.models import Bundle, Transfer
from ledger.errors import TailRecoveryRefused

KINDS = (
    events.TRANSFERRED,
    events.BATCH_TRANSFERRED,
    events.TRANSFER_ACCEPTED,
    events.TRANSFER_REJECTED,
    events.TRANSFER_WITHDRAWN,
)

_DECISIONS = {
    events.TRANSFER_ACCEPTED: Transfer.Status.ACCEPTED,
    events.TRANSFER_REJECTED: Transfer.Status.REJECTED,
    events.TRANSFER_WITHDRAWN: Transfer.Status.WITHDRAWN,
}


def _refuse(seq: int, text: str) -> TailRecoveryRefused:
    return TailRecoveryRefused(f"Entry {seq}: {text}; nothing was changed.", seq=seq)


def _user_id(actor: str) -> int | None:
    prefix, _, pk = actor.partition(":")
    return int(pk) if prefix == "user" and pk.isdigit() else None


def _move(seq: int, data: dict[str, Any], at: dt.datetime, actor: str) -> None:
    """One transfer item: the bundle moves whole, or splits into the moved part and the
    rest, exactly as `certificates.services.common._apply_moves` did."""
    pending = data["status"] == Transfer.Status.PENDING
    source = Bundle.objects.select_for_update().filter(pk=data["bundle_id"]).first()
    if source is None or source.status != Bundle.Status.ACTIVE:
        raise _refuse(seq, f"bundle {data['bundle_id']} is not an active bundle here")
    if source.account_id != data["from_account_id"]:
        raise _refuse(seq, f"bundle {source.pk} is not held by account {data['from_account_id']}")
    volume = data["volume_wh"]
    cut = source.unit_start + volume
    if data["unit_start"] != source.unit_start or data["unit_end"] != cut or cut > source.unit_end:
        raise _refuse(seq, f"bundle {source.pk} does not hold units [{data['unit_start']}, {cut})")
    account_id = data["from_account_id"] if pending else data["to_account_id"]
    status = Bundle.Status.RESERVED if pending else Bundle.Status.ACTIVE
    if data["moved_bundle_id"] == source.pk:
        if cut != source.unit_end or data["rest_bundle_id"] is not None:
            raise _refuse(seq, f"bundle {source.pk} moved whole but only {volume} Wh given")
        source.account_id, source.status = account_id, status
        source.save(update_fields=["account", "status"])
    else:
        if data["rest_bundle_id"] is None:
            raise _refuse(seq, f"the split of bundle {source.pk} has no rest")
        common = {
            "device_id": source.device_id,
            "issuance_id": source.issuance_id,
            "parent_id": source.pk,
            "period_start": source.period_start,
            "period_end": source.period_end,
            "expires_on": source.expires_on,
        }
        source.status = Bundle.Status.SPLIT
        source.save(update_fields=["status"])
        Bundle.objects.bulk_create(
            [
                Bundle(
                    pk=data["moved_bundle_id"],
                    account_id=account_id,
                    unit_start=source.unit_start,
                    unit_end=cut,
                    status=status,
                    **common,
                ),
                Bundle(
                    pk=data["rest_bundle_id"],
                    account_id=source.account_id,
                    unit_start=cut,
                    unit_end=source.unit_end,
                    status=Bundle.Status.ACTIVE,
                    **common,
                ),
            ]
        )
    Transfer.objects.create(
        pk=data["transfer_id"],
        bundle_id=data["moved_bundle_id"],
        source_id=source.pk,
        from_account_id=data["from_account_id"],
        to_account_id=data["to_account_id"],
        volume_wh=volume,
        status=data["status"],
        created_by_id=_user_id(actor),
        created_at=at,
    )


def _decide(seq: int, kind: str, data: dict[str, Any], at: dt.datetime) -> None:
    transfer = Transfer.objects.select_for_update().filter(pk=data["transfer_id"]).first()
    if transfer is None or transfer.status != Transfer.Status.PENDING:
        raise _refuse(seq, f"transfer {data['transfer_id']} is not pending here")
    bundle = Bundle.objects.select_for_update().get(pk=transfer.bundle_id)
    if bundle.pk != data["bundle_id"] or bundle.status != Bundle.Status.RESERVED:
        raise _refuse(seq, f"bundle {data['bundle_id']} is not the transfer's reserved bundle")
    bundle.account_id, bundle.status = data["account_id"], Bundle.Status.ACTIVE
    bundle.save(update_fields=["account", "status"])
    transfer.status, transfer.decided_at = _DECISIONS[kind], at
    transfer.save(update_fields=["status", "decided_at"])


def certificate_entry_rebuild(seq: int, event: dict[str, Any]) -> None:
    """Apply one recovered certificate entry to the tables (ledger.recovery.TAIL_REBUILDERS)."""
    kind, data, actor = event["type"], event["data"], event.get("actor", "")
    at = parse_datetime(event["at"])
    try:
        if kind == events.TRANSFERRED:
            _move(seq, data, at, actor)
        elif kind == events.BATCH_TRANSFERRED:
            for item in data["transfers"]:
                _move(seq, item, at, actor)
        else:
            _decide(seq, kind, data, at)
    except (KeyError, TypeError, ValueError) as exc:
        raise _refuse(seq, f"malformed {kind} data: {exc!r}") from None
    _sequences_past_recovered()


def _sequences_past_recovered() -> None:
    """Rows inserted with the ids the events name: the id sequences must pass them, or the
    next transfer would be given an id that is taken (PostgreSQL; SQLite takes max + 1)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in (Bundle._meta.db_table, Transfer._meta.db_table):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"GREATEST((SELECT MAX(id) FROM {table}), 1))"
            )
