"""Certificates leaving for a partner registry, and the export's delivery state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from certificates import errors, events, locks, storage
from certificates.crossregistry.common import (
    ACCOUNT_NUMBER,
    EXPORT_DESTINATION_LOOKUPS,
    IMPORTING_ACTOR,
)
from certificates.models import (
    Bundle,
    CertificateExport,
    CertificateImport,
    ForeignDevice,
    Issuance,
)
from certificates.services.common import (
    Actor,
    _apply_moves,
    _check_fits,
    _check_movable,
    _check_volume,
    _require_holder,
    _require_may_leave,
    _today,
)
from ledger.services import ledger_append
from registry.errors import InvalidInput


def _certificate_identity(bundle: Bundle) -> tuple[str, int]:
    """(origin, device id there) of a bundle's units: ours, or where they were imported from."""
    foreign = ForeignDevice.objects.filter(device_id=bundle.device_id).first()
    if foreign is not None:
        return foreign.origin, foreign.origin_device_id
    return settings.REGISTRY_ORIGIN, bundle.device_id


def _certificate_data(bundle: Bundle, issuance: Issuance) -> dict[str, Any]:
    origin, device_id = _certificate_identity(bundle)
    return {
        "origin": origin,
        "device_id": device_id,
        "device_name": issuance.device_name,
        "unit_start": bundle.unit_start,
        "unit_end": bundle.unit_end,
        "period_start": bundle.period_start,
        "period_end": bundle.period_end,
        "expires_on": bundle.expires_on,
        "issued_at": issuance.issued_at,
        "granularity": issuance.granularity,
        "attributes": events.certificate_attributes(issuance),
    }


def _partner(origin: str):
    peer = None
    for lookup in EXPORT_DESTINATION_LOOKUPS:
        peer = lookup(origin)
        if peer is not None:
            break
    if peer is None or origin == settings.REGISTRY_ORIGIN:
        raise errors.ExportDestinationUnknown(destination=origin)
    return peer


@transaction.atomic
def certificate_export(
    *,
    actor: Actor,
    bundle_id: int,
    destination: str,
    destination_account: str,
    volume_wh: int | None = None,
) -> CertificateExport:
    """Send a bundle, or its first `volume_wh` units, to an account at a partner registry."""
    _check_volume(volume_wh)
    if not (isinstance(destination_account, str) and ACCOUNT_NUMBER.fullmatch(destination_account)):
        raise InvalidInput(
            "The destination account must be an account number (1-64 letters, digits, ._:/-).",
            fields={"destination_account": ["invalid"]},
        )
    peer = _partner(destination)
    now = timezone.now()
    held = locks.bundles_lock_held([bundle_id], actor)[bundle_id]
    account = _require_holder(held)
    _require_may_leave(account)
    bundle = held.bundle
    _check_movable(bundle, _today(now))
    volume = bundle.volume_wh if volume_wh is None else volume_wh
    _check_fits(bundle, volume)
    move = events.Move(
        bundle=bundle, volume_wh=volume, account_id=account.pk, status=Bundle.Status.EXPORTED
    )
    _apply_moves([move])
    assert move.moved is not None
    export = CertificateExport.objects.create(
        bundle=move.moved,
        source=bundle,
        from_account=account,
        destination=peer,
        destination_account=destination_account,
        volume_wh=volume,
        created_by=None if isinstance(actor, str) else actor,
        created_at=now,
    )
    issuance = Issuance.objects.get(pk=bundle.issuance_id)
    ledger_append(
        kind=events.EXPORTED,
        actor=actor,
        subject=[*move.bundles(), export, account, peer],
        data={
            "export_id": export.pk,
            "public_id": export.public_id,
            "from_account_id": account.pk,
            "destination": peer.origin,
            "destination_account": destination_account,
            **move.data(),
            "certificate": _certificate_data(move.moved, issuance),
            "imported_from": _imported_from(move.moved),
        },
    )
    return export


def _imported_from(bundle: Bundle) -> dict[str, Any] | None:
    """The export entry our units came in with, if they were imported (the chain's root)."""
    from certificates.selectors import bundle_ancestry

    root = bundle_ancestry(bundle_id=bundle.pk)[0]
    received = CertificateImport.objects.filter(bundle_id=root).first()
    if received is None:
        return None
    return {
        "origin": received.origin,
        "export_seq": received.export_seq,
        "leaf_hash": received.export_leaf_hash,
    }


@transaction.atomic
def certificate_export_settle(
    *, export_id: int, outcome: str, receipt: str, reason: str = "", reference: dict | None = None
) -> CertificateExport:
    """Record the destination's verified receipt: imported (final) or refused (units return)."""
    bundle_id = (
        CertificateExport.objects.filter(pk=export_id).values_list("bundle_id", flat=True).first()
    )
    if bundle_id is None:
        raise errors.ExportNotFound(export_id=export_id)
    bundle = locks.bundles_lock([bundle_id])[bundle_id]
    export = locks.export_lock(export_id)
    if export.status != CertificateExport.Status.PENDING:
        if export.receipt == receipt:
            return export
        raise errors.ExportAlreadySettled(export_id=export_id, status=export.status)
    now = timezone.now()
    export.receipt, export.settled_at = receipt, now
    export.destination_reference = reference or {}
    export.last_error, export.next_attempt_at = "", None
    common = {
        "export_id": export.pk,
        "public_id": export.public_id,
        "bundle_id": bundle.pk,
        "destination": export.destination.origin,
        "export_seq": export.export_seq,
        "receipt": receipt,
    }
    if outcome == CertificateImport.Status.IMPORTED:
        export.status = CertificateExport.Status.IMPORTED
        kind, data = events.EXPORT_COMPLETED, common | {"reference": export.destination_reference}
    else:
        export.status, export.reason = CertificateExport.Status.RETURNED, reason[:64]
        storage.bundles_update(
            [bundle.pk], status=Bundle.Status.ACTIVE, account_id=bundle.account_id
        )
        kind = events.EXPORT_RETURNED
        data = common | {
            "account_id": bundle.account_id,
            "volume_wh": bundle.volume_wh,
            "reason": export.reason,
        }
    export.save(
        update_fields=[
            "status",
            "reason",
            "receipt",
            "settled_at",
            "destination_reference",
            "last_error",
            "next_attempt_at",
        ]
    )
    subjects: list[Any] = [bundle, export]
    if kind == events.EXPORT_RETURNED:
        subjects.append(("account", bundle.account_id))
    ledger_append(kind=kind, actor=IMPORTING_ACTOR, subject=subjects, data=data)
    return export


# Delivery bookkeeping. The federation layer delivers exports; these functions are the only
# writers of an export's delivery fields (no ledger event: retry state, not registry state).


def certificate_export_seq_record(*, export_id: int, seq: int) -> None:
    """Keep the sequence number of the export's `certificate.exported` entry, once known."""
    CertificateExport.objects.filter(pk=export_id).update(export_seq=seq)


def certificate_export_delivery_claim(
    *, export_id: int, until: dt.datetime, due_only: bool
) -> bool:
    """Mark a pending export as being delivered until `until` (its next attempt moves there);
    False if it is not pending, or (`due_only`) backing off or claimed by another call."""
    rows = CertificateExport.objects.filter(pk=export_id, status=CertificateExport.Status.PENDING)
    if due_only:
        now = timezone.now()
        rows = rows.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    return rows.update(next_attempt_at=until) == 1


def certificate_export_delivery_release(*, export_id: int) -> None:
    """Drop the claim without counting an attempt (nothing could be sent yet)."""
    CertificateExport.objects.filter(pk=export_id).update(next_attempt_at=None)


def certificate_export_delivery_failed(
    *, export_id: int, error: str, backoff_seconds: Callable[[int], float]
) -> None:
    """Count a failed attempt of a pending export and set its next attempt after
    `backoff_seconds(attempts)`."""
    with transaction.atomic():
        export = CertificateExport.objects.select_for_update().get(pk=export_id)
        if export.status != CertificateExport.Status.PENDING:
            return
        export.delivery_attempts += 1
        export.last_error = error[:2000]
        export.next_attempt_at = timezone.now() + dt.timedelta(
            seconds=backoff_seconds(export.delivery_attempts)
        )
        export.save(update_fields=["delivery_attempts", "last_error", "next_attempt_at"])
