"""Certificates leaving for, and arriving from, partner registries (docs/federation.md).

Export: the units move to EXPORTED in one transaction with `certificate.exported`; from
then on they never move here again, unless the destination refuses them with a signed
receipt (`certificate_export_settle`, `certificate.export_returned`).

Import: the federation layer has verified the exporter's entry, its inclusion proof and
the anchored checkpoint (`federation.transfers`); `certificate_import` decides, under the
per-device lock, whether the units can be credited, and records `certificate.imported`
or `certificate.import_rejected`. One `CertificateImport` row per (origin, entry), so the
same export is never imported twice. Imported units keep their number under a local
stand-in of the foreign device (`ForeignDevice`), so units that come back, or arrive twice
by two routes, meet in one overlap check.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import Account
from certificates import errors, events, locks, storage
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
    _issuing_body_of,
    _require_holder,
    _require_may_leave,
    _today,
)
from ledger.services import ledger_append
from registry.countries import country_code_valid
from registry.errors import InvalidInput
from registry.hooks import Hook

ACCOUNT_NUMBER = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")
IMPORTING_ACTOR = "system:federation"

EXPORT_DESTINATION_LOOKUPS = Hook("certificates.export_destination_lookups")
"""Called with a registry origin; return the active partner registry (the row
`CertificateExport.destination` points at) or None. federation registers its peer lookup;
without one, no destination is known."""


class Refusal:
    """Why an import is refused (the code travels in the signed receipt)."""

    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNT_CLOSED = "account_closed"
    ACCOUNT_NOT_TRADING = "account_not_trading"
    EXPIRED = "expired"
    UNITS_ALREADY_HELD = "units_already_held"
    UNITS_NOT_EXPORTED = "units_not_exported_from_here"
    MALFORMED = "malformed_certificate"


class ImportRefused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(detail)


@dataclass(frozen=True)
class VerifiedExport:
    """An export entry of a partner's log, checked against its anchored checkpoint."""

    origin: str
    seq: int
    leaf_hash: bytes
    data: dict[str, Any]
    checkpoint: str
    provenance: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- export


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
    if not isinstance(destination_account, str) or not ACCOUNT_NUMBER.match(destination_account):
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


# ---------------------------------------------------------------- import


def _parse_certificate(data: dict[str, Any]) -> dict[str, Any]:
    """The certificate fields of an export event, typed; ImportRefused if malformed."""
    try:
        cert = data["certificate"]
        attrs = cert["attributes"]
        out = {
            "origin": str(cert["origin"]),
            "device_id": int(cert["device_id"]),
            "device_name": str(cert["device_name"])[:200],
            "unit_start": int(cert["unit_start"]),
            "unit_end": int(cert["unit_end"]),
            "period_start": parse_datetime(cert["period_start"]),
            "period_end": parse_datetime(cert["period_end"]),
            "expires_on": parse_date(cert["expires_on"]) if cert.get("expires_on") else None,
            "issued_at": parse_datetime(cert["issued_at"]),
            "granularity": str(cert["granularity"]),
            "technology_code": str(attrs["technology_code"])[:7],
            "energy_source_code": str(attrs["energy_source_code"])[:9],
            "grid_area_code": str(attrs["grid_area"])[:16],
            "country": str(attrs["country"])[:2],
            "capacity_w": int(attrs["capacity_w"]) if attrs.get("capacity_w") is not None else None,
            "commissioning_date": (
                parse_date(attrs["commissioning_date"]) if attrs.get("commissioning_date") else None
            ),
            "support": str(attrs.get("support") or "")[:64],
            "emission_factor_g_per_kwh": (
                Decimal(attrs["emission_factor_g_per_kwh"])
                if attrs.get("emission_factor_g_per_kwh") is not None
                else None
            ),
            "is_storage": bool(attrs.get("is_storage")),
            "expiry_months": attrs.get("expiry_months"),
            "account": str(data["destination_account"]),
        }
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        detail = f"the export's certificate is malformed: {exc!r}"
        raise ImportRefused(Refusal.MALFORMED, detail) from None
    if None in (out["period_start"], out["period_end"], out["issued_at"]):
        raise ImportRefused(Refusal.MALFORMED, "the export's certificate has unreadable times")
    if not 0 <= out["unit_start"] < out["unit_end"] or out["period_end"] <= out["period_start"]:
        raise ImportRefused(Refusal.MALFORMED, "the export's unit range or period is empty")
    if not country_code_valid(out["country"]):
        raise ImportRefused(Refusal.MALFORMED, "the export's country is not an ISO 3166-1 code")
    return out


def _receiving_account(number: str) -> Account:
    found = storage.account_lock_for_receiving(number=number)
    if found is None:
        raise ImportRefused(Refusal.ACCOUNT_NOT_FOUND, f"no account {number!r} here")
    account = found[0]
    if not account.is_open:
        raise ImportRefused(Refusal.ACCOUNT_CLOSED, f"account {number!r} is closed")
    if account.kind != Account.Kind.TRADING:
        raise ImportRefused(
            Refusal.ACCOUNT_NOT_TRADING, f"account {number!r} is not a trading account"
        )
    return account


def _grid_area(cert: dict[str, Any], origin: str):
    from assets.models import GridArea

    area = GridArea.objects.filter(code=cert["grid_area_code"]).first()
    if area is None:
        area, _ = GridArea.objects.get_or_create(
            code=cert["grid_area_code"],
            defaults={
                "name": f"{cert['grid_area_code']} (from {origin})"[:200],
                "country": cert["country"],
                "time_zone": "UTC",
                "emission_factor_g_per_kwh": cert["emission_factor_g_per_kwh"] or Decimal(0),
                "expiry_months": cert["expiry_months"] or 12,
            },
        )
    return area


def _device_subjects(device_id: int | None) -> list[tuple[str, int]]:
    """The device of an import, and the grid area of a foreign stand-in (an import may have
    created both: _local_device)."""
    from assets.models import Device

    if device_id is None:
        return []
    device = Device.objects.only("status", "grid_area_id").get(pk=device_id)
    if device.status != Device.Status.FOREIGN:
        return [("device", device_id)]
    return [("device", device_id), ("grid_area", device.grid_area_id)]


def _local_device(cert: dict[str, Any], sender: str) -> int:
    """The local device id of the units: ours if they were issued here, else the stand-in."""
    from assets.models import Device

    if cert["origin"] == settings.REGISTRY_ORIGIN:
        if not Device.objects.filter(pk=cert["device_id"]).exists():
            raise ImportRefused(Refusal.UNITS_NOT_EXPORTED, "no such device was registered here")
        return cert["device_id"]
    found = ForeignDevice.objects.filter(
        origin=cert["origin"], origin_device_id=cert["device_id"]
    ).first()
    if found is not None:
        return found.device_id
    issuing_body = _issuing_body_of(IMPORTING_ACTOR)
    if issuing_body is None:
        raise errors.ImportUnavailable()
    try:
        with transaction.atomic():
            device = Device.objects.create(
                name=cert["device_name"] or f"device {cert['device_id']} at {cert['origin']}",
                organisation=issuing_body,
                grid_area=_grid_area(cert, sender),
                technology_code=cert["technology_code"],
                energy_source_code=cert["energy_source_code"],
                capacity_w=cert["capacity_w"] or 0,
                commissioning_date=cert["commissioning_date"] or cert["period_start"].date(),
                latitude=Decimal(0),
                longitude=Decimal(0),
                is_storage=cert["is_storage"],
                status=Device.Status.FOREIGN,
                status_reason=(
                    f"Device {cert['device_id']} of {cert['origin']}; "
                    "its certificates were imported."
                ),
            )
            ForeignDevice.objects.create(
                device=device, origin=cert["origin"], origin_device_id=cert["device_id"]
            )
            return device.pk
    except IntegrityError:
        # Another import created the stand-in first.
        return ForeignDevice.objects.get(
            origin=cert["origin"], origin_device_id=cert["device_id"]
        ).device_id


def _check_not_expired(cert: dict[str, Any], today: dt.date) -> None:
    if cert["expires_on"] is not None and today >= cert["expires_on"]:
        raise ImportRefused(Refusal.EXPIRED, f"the certificates expired on {cert['expires_on']}")


def _check_units_free(device_id: int, cert: dict[str, Any]) -> None:
    """No live bundle holds any of the units here, and units of ours were exported."""
    start, end = cert["unit_start"], cert["unit_end"]
    overlapping = Bundle.objects.filter(device_id=device_id, unit_start__lt=end, unit_end__gt=start)
    if overlapping.exclude(status__in=[Bundle.Status.SPLIT, Bundle.Status.EXPORTED]).exists():
        raise ImportRefused(
            Refusal.UNITS_ALREADY_HELD, f"units [{start}, {end}) are already held here"
        )
    if cert["origin"] == settings.REGISTRY_ORIGIN:
        covered = overlapping.filter(
            status=Bundle.Status.EXPORTED, unit_start__lte=start, unit_end__gte=end
        ).exists()
        if not covered:
            raise ImportRefused(
                Refusal.UNITS_NOT_EXPORTED, f"units [{start}, {end}) did not leave from here"
            )


def _credit(
    received: CertificateImport, cert: dict[str, Any], device_id: int, account: Account
) -> tuple[Bundle, Issuance]:
    issuance = Issuance.objects.create(
        device_id=device_id,
        issuing_body=None,
        issued_at=cert["issued_at"],
        granularity=cert["granularity"][:8],
        period_start=cert["period_start"],
        period_end=cert["period_end"],
        unit_start=cert["unit_start"],
        unit_end=cert["unit_end"],
        volume_wh=cert["unit_end"] - cert["unit_start"],
        device_name=cert["device_name"],
        technology_code=cert["technology_code"],
        energy_source_code=cert["energy_source_code"],
        grid_area=_grid_area(cert, received.origin),
        grid_area_code=cert["grid_area_code"],
        country=cert["country"],
        capacity_w=cert["capacity_w"],
        commissioning_date=cert["commissioning_date"],
        support=cert["support"],
        emission_factor_g_per_kwh=cert["emission_factor_g_per_kwh"],
        is_storage=cert["is_storage"],
        expiry_months=cert["expiry_months"],
        imported_from=received.origin,
    )
    bundle = Bundle.objects.create(
        device_id=device_id,
        issuance=issuance,
        account=account,
        unit_start=cert["unit_start"],
        unit_end=cert["unit_end"],
        period_start=cert["period_start"],
        period_end=cert["period_end"],
        expires_on=cert["expires_on"],
        status=Bundle.Status.ACTIVE,
    )
    return bundle, issuance


@transaction.atomic
def certificate_import(
    *, verified: VerifiedExport, sign_receipt: Callable[[CertificateImport], str]
) -> CertificateImport:
    """Credit a verified export to its destination account, or refuse it; either way once.

    Raises ExportAlreadyImported (with the earlier outcome) for an export received before,
    and ExportNotForThisRegistry when another registry is the destination: only the
    destination may refuse, since a refusal lets the exporter re-credit the units.
    """
    data = verified.data
    if data.get("destination") != settings.REGISTRY_ORIGIN:
        raise errors.ExportNotForThisRegistry(destination=data.get("destination"))
    now = timezone.now()
    received = CertificateImport(
        origin=verified.origin,
        export_seq=verified.seq,
        export_leaf_hash=verified.leaf_hash.hex(),
        export_data=data,
        checkpoint=verified.checkpoint,
        provenance=verified.provenance,
        status=CertificateImport.Status.IMPORTED,
        created_at=now,
    )
    try:
        with transaction.atomic():
            received.save()
    except IntegrityError:
        raise errors.ExportAlreadyImported(
            origin=verified.origin, export_seq=verified.seq
        ) from None
    reference = {
        "origin": verified.origin,
        "export_seq": verified.seq,
        "export_leaf_hash": received.export_leaf_hash,
        "export_id": data.get("export_id"),
    }
    device_id: int | None = None
    try:
        cert = _parse_certificate(data)
        # Checks that need no device first: a refusal leaves no stand-in device behind.
        if not Account.objects.filter(number=cert["account"]).exists():
            raise ImportRefused(Refusal.ACCOUNT_NOT_FOUND, f"no account {cert['account']!r} here")
        _check_not_expired(cert, _today(now))
        device_id = _local_device(cert, verified.origin)
        locks.unit_counter_lock(device_id)
        _check_units_free(device_id, cert)
        account = _receiving_account(cert["account"])
    except ImportRefused as refused:
        received.status = CertificateImport.Status.REJECTED
        received.reason, received.detail = refused.reason, refused.detail
        received.receipt = sign_receipt(received)
        received.save(update_fields=["status", "reason", "detail", "receipt"])
        ledger_append(
            kind=events.IMPORT_REJECTED,
            actor=IMPORTING_ACTOR,
            subject=[received, *_device_subjects(device_id)],
            data=reference
            | {"import_id": received.pk, "public_id": received.public_id, "reason": refused.reason},
        )
        return received
    bundle, issuance = _credit(received, cert, device_id, account)
    received.bundle, received.account = bundle, account
    received.receipt = sign_receipt(received)
    received.save(update_fields=["bundle", "account", "receipt"])
    ledger_append(
        kind=events.IMPORTED,
        actor=IMPORTING_ACTOR,
        subject=[
            bundle,
            issuance,
            received,
            account,
            *_device_subjects(device_id),
            # the grid area of the units, created here if it was unknown (_grid_area)
            ("grid_area", issuance.grid_area_id),
        ],
        data=reference
        | {
            "import_id": received.pk,
            "public_id": received.public_id,
            "bundle_id": bundle.pk,
            "device_id": device_id,
            "issuance_id": issuance.pk,
            "account_id": account.pk,
            "unit_start": bundle.unit_start,
            "unit_end": bundle.unit_end,
            "volume_wh": bundle.volume_wh,
            "certificate": data["certificate"],
        },
    )
    return received
