"""What export and import share: the partner lookup hook, refusal codes, a verified export."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
