"""The claim of a retirement and its commitment, the only form in which it enters the ledger.

Beneficiary names may name people, and people may ask to be forgotten: the ledger holds
SHA-256 of the RFC 8785 claim with a random salt; the statement shows the claim and the
salt, so anyone can recompute the hash and compare it with the retirement's entry.
"""

import hashlib
from typing import Any

from ledger.canonical import canonical_bytes


def retirement_claim(retirement: Any) -> dict[str, Any]:
    return {
        "beneficiary_name": retirement.beneficiary_name,
        "beneficiary_country": retirement.beneficiary_country,
        "consumption_start": retirement.consumption_start,
        "consumption_end": retirement.consumption_end,
        "location": retirement.location,
        "purpose": retirement.purpose,
    }


def claim_commitment(claim: dict[str, Any], salt: str) -> str:
    """SHA-256 (hex) of the canonical claim with its salt."""
    return hashlib.sha256(canonical_bytes(claim | {"salt": salt})).hexdigest()
