"""Certificates arriving from a partner registry (verified by federation.transfers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import Account
from certificates import errors, events, locks, storage
from certificates.crossregistry.common import (
    IMPORTING_ACTOR,
    ImportRefused,
    Refusal,
    VerifiedExport,
)
from certificates.models import (
    Bundle,
    CertificateImport,
    ForeignDevice,
    Issuance,
    IssuanceRequest,
)
from certificates.services.common import (
    _issuing_body_of,
    _today,
)
from ledger.services import ledger_append
from registry.countries import country_code_valid
from registry.datetimes import DATE_TIME_RE

# What the columns an import writes can hold (bigint ids, units and capacities; a positive
# smallint of months; a decimal(9, 3) emission factor, the grid area's), so that a partner's
# malformed certificate is refused with a receipt instead of failing (a 500) on the insert.
_BIGINT_MAX = 2**63 - 1
_MONTHS_MAX = 32767
_EMISSION_FACTOR_LIMIT = Decimal(10**6)


def _whole(value: Any, low: int, high: int) -> int:
    """A JSON integer in [low, high]; ValueError otherwise (also for true, 1.5 and "1")."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{value!r} is not a whole number from {low} to {high}")
    return value


def _time(value: Any) -> dt.datetime:
    """An RFC 3339 date-time with an offset in years 1000-8999 (registry.datetimes)."""
    if not isinstance(value, str) or not DATE_TIME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with an offset")
    return parse_datetime(value)


def _text(value: Any, max_length: int) -> str:
    """A text that fits its column whole (cut, an origin would name another registry)."""
    text = str(value)
    if len(text) > max_length:
        raise ValueError(f"{text[:40]!r}... is longer than {max_length} characters")
    return text


def _emission_factor(value: Any) -> Decimal | None:
    if value is None:
        return None
    factor = Decimal(str(value))
    if not factor.is_finite() or not 0 <= factor < _EMISSION_FACTOR_LIMIT:
        raise ValueError(f"emission factor {value!r} is not from 0 to {_EMISSION_FACTOR_LIMIT}")
    return factor


def _parse_certificate(data: dict[str, Any]) -> dict[str, Any]:
    """The certificate fields of an export event, typed; ImportRefused if malformed."""
    try:
        cert = data["certificate"]
        attrs = cert["attributes"]
        expiry_months = attrs.get("expiry_months")
        out = {
            "origin": _text(cert["origin"], ForeignDevice._meta.get_field("origin").max_length),
            "device_id": _whole(cert["device_id"], 0, _BIGINT_MAX),
            "device_name": str(cert["device_name"])[:200],
            "unit_start": _whole(cert["unit_start"], 0, _BIGINT_MAX),
            "unit_end": _whole(cert["unit_end"], 0, _BIGINT_MAX),
            "period_start": _time(cert["period_start"]),
            "period_end": _time(cert["period_end"]),
            "expires_on": parse_date(cert["expires_on"]) if cert.get("expires_on") else None,
            "issued_at": _time(cert["issued_at"]),
            "granularity": str(cert["granularity"]),
            "technology_code": str(attrs["technology_code"])[:7],
            "energy_source_code": str(attrs["energy_source_code"])[:9],
            "grid_area_code": str(attrs["grid_area"])[:16],
            "country": str(attrs["country"])[:2],
            # the stand-in device needs a capacity (Device: capacity_w > 0), as EECS does
            "capacity_w": _whole(attrs["capacity_w"], 1, _BIGINT_MAX),
            "commissioning_date": (
                parse_date(attrs["commissioning_date"]) if attrs.get("commissioning_date") else None
            ),
            "support": str(attrs.get("support") or "")[:64],
            "emission_factor_g_per_kwh": _emission_factor(attrs.get("emission_factor_g_per_kwh")),
            "is_storage": bool(attrs.get("is_storage")),
            "expiry_months": (
                None if expiry_months is None else _whole(expiry_months, 1, _MONTHS_MAX)
            ),
            "account": str(data["destination_account"]),
        }
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        detail = f"the export's certificate is malformed: {exc!r}"
        raise ImportRefused(Refusal.MALFORMED, detail) from None
    if out["granularity"] not in IssuanceRequest.Granularity.values:
        raise ImportRefused(Refusal.MALFORMED, "the export's granularity is not hour or period")
    if not out["unit_start"] < out["unit_end"] or out["period_end"] <= out["period_start"]:
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
                capacity_w=cert["capacity_w"],
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
