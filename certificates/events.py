"""The data of certificate ledger events: one builder per kind, read back by `replay`.

Events carry everything needed to rebuild holdings from the ledger alone: bundle ids,
unit ranges, accounts and statuses. A "move" takes the first `volume_wh` units of a
source bundle; if that is the whole bundle the bundle itself moves (`moved_bundle_id`
equals `bundle_id`, no rest), otherwise the source is split into the moved part
[unit_start, unit_end) and the rest [unit_end, source end).

The catalogue with every field is ledger/EVENTS.md, "certificates".

Kinds: certificate.issued, issuance_request.created (with "issuance" when the device
needs no approval), issuance_request.approved (with "issuance"),
issuance_request.rejected, certificate.transferred, certificate.batch_transferred,
certificate.transfer_accepted / _rejected / _withdrawn, certificate.retired,
certificate.expired, certificate.withdrawn, transfer_policy.updated, and across
registries certificate.exported, certificate.export_completed, certificate.export_returned,
certificate.imported, certificate.import_rejected (docs/federation.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accounts.models import Account
    from certificates.models import Bundle, Issuance, Transfer

ISSUED = "certificate.issued"
REQUEST_CREATED = "issuance_request.created"
REQUEST_APPROVED = "issuance_request.approved"
REQUEST_REJECTED = "issuance_request.rejected"
TRANSFERRED = "certificate.transferred"
BATCH_TRANSFERRED = "certificate.batch_transferred"
CUT_TRANSFERRED = "certificate.cut_transferred"
TRANSFER_ACCEPTED = "certificate.transfer_accepted"
TRANSFER_REJECTED = "certificate.transfer_rejected"
TRANSFER_WITHDRAWN = "certificate.transfer_withdrawn"
RETIRED = "certificate.retired"
EXPIRED = "certificate.expired"
WITHDRAWN = "certificate.withdrawn"
POLICY_UPDATED = "transfer_policy.updated"
EXPORTED = "certificate.exported"
EXPORT_COMPLETED = "certificate.export_completed"
EXPORT_RETURNED = "certificate.export_returned"
IMPORTED = "certificate.imported"
IMPORT_REJECTED = "certificate.import_rejected"

KINDS = (
    ISSUED,
    REQUEST_CREATED,
    REQUEST_APPROVED,
    REQUEST_REJECTED,
    TRANSFERRED,
    BATCH_TRANSFERRED,
    CUT_TRANSFERRED,
    TRANSFER_ACCEPTED,
    TRANSFER_REJECTED,
    TRANSFER_WITHDRAWN,
    RETIRED,
    EXPIRED,
    WITHDRAWN,
    POLICY_UPDATED,
    EXPORTED,
    EXPORT_COMPLETED,
    EXPORT_RETURNED,
    IMPORTED,
    IMPORT_REJECTED,
)


@dataclass
class Move:
    """Take `volume_wh` units from a locked source bundle to `account_id` with `status`.

    A transfer also records the account the units leave (`from_account`) and whether the
    move waits for the receiver's acceptance (`pending`: the units stay reserved with it).
    """

    bundle: Bundle
    volume_wh: int
    account_id: int
    status: int
    moved: Bundle | None = None
    rest: Bundle | None = None
    from_account: Account | None = None
    pending: bool = False

    @property
    def is_whole(self) -> bool:
        return self.volume_wh == self.bundle.unit_end - self.bundle.unit_start

    def data(self) -> dict[str, Any]:
        assert self.moved is not None
        return {
            "bundle_id": self.bundle.pk,
            "device_id": self.bundle.device_id,
            "moved_bundle_id": self.moved.pk,
            "rest_bundle_id": self.rest.pk if self.rest is not None else None,
            "unit_start": self.moved.unit_start,
            "unit_end": self.moved.unit_end,
            "volume_wh": self.volume_wh,
        }

    def bundles(self) -> list[Bundle]:
        out = [self.bundle]
        for b in (self.moved, self.rest):
            if b is not None and b is not self.bundle:
                out.append(b)
        return out


def certificate_attributes(issuance: Issuance) -> dict[str, Any]:
    """What a certificate says about its energy, as issued; it travels with every export."""
    return {
        "technology_code": issuance.technology_code,
        "energy_source_code": issuance.energy_source_code,
        "grid_area": issuance.grid_area_code,
        "country": issuance.country,
        "capacity_w": issuance.capacity_w,
        "commissioning_date": issuance.commissioning_date,
        "support": issuance.support,
        "emission_factor_g_per_kwh": issuance.emission_factor_g_per_kwh,
        "is_storage": issuance.is_storage,
        "expiry_months": issuance.expiry_months,
    }


def issuance_data(issuance: Issuance, periods: list[list[Any]]) -> dict[str, Any]:
    """`periods`: [period_start, period_end, unit_start, unit_end, [[bundle_id, account_id,
    unit_start, unit_end], …]] per issued period, in time order."""
    return {
        "issuance_id": issuance.pk,
        "request_id": issuance.request_id,
        "device_id": issuance.device_id,
        "issuing_body_id": issuance.issuing_body_id,
        "granularity": issuance.granularity,
        "unit_start": issuance.unit_start,
        "unit_end": issuance.unit_end,
        "volume_wh": issuance.volume_wh,
        "attributes": certificate_attributes(issuance),
        "periods": periods,
    }


def transfer_data(transfer: Transfer, move: Move) -> dict[str, Any]:
    return {
        "transfer_id": transfer.pk,
        "status": transfer.status,
        "from_account_id": transfer.from_account_id,
        "to_account_id": transfer.to_account_id,
        **move.data(),
    }


def transfer_decision_data(transfer: Transfer, bundle: Bundle) -> dict[str, Any]:
    return {
        "transfer_id": transfer.pk,
        "bundle_id": bundle.pk,
        "from_account_id": transfer.from_account_id,
        "to_account_id": transfer.to_account_id,
        "account_id": bundle.account_id,
        "volume_wh": bundle.unit_end - bundle.unit_start,
    }
