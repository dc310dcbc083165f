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

The package: `common` (the partner lookup hook, refusal codes, `VerifiedExport`), `exports`
(export, settle, delivery state) and `imports` (the decision on an arriving certificate).
"""

from certificates.crossregistry.common import (
    ACCOUNT_NUMBER,
    EXPORT_DESTINATION_LOOKUPS,
    IMPORTING_ACTOR,
    ImportRefused,
    Refusal,
    VerifiedExport,
)
from certificates.crossregistry.exports import (
    certificate_export,
    certificate_export_delivery_claim,
    certificate_export_delivery_failed,
    certificate_export_delivery_release,
    certificate_export_seq_record,
    certificate_export_settle,
)
from certificates.crossregistry.imports import certificate_import

__all__ = [
    "ACCOUNT_NUMBER",
    "EXPORT_DESTINATION_LOOKUPS",
    "IMPORTING_ACTOR",
    "ImportRefused",
    "Refusal",
    "VerifiedExport",
    "certificate_export",
    "certificate_export_delivery_claim",
    "certificate_export_delivery_failed",
    "certificate_export_delivery_release",
    "certificate_export_seq_record",
    "certificate_export_settle",
    "certificate_import",
]
