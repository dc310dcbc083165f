"""Contract kinds by name: how to validate their terms and what triggers them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contracts.kinds import community, retirement, shares, storage
from contracts.kinds.base import Validated


@dataclass(frozen=True)
class Kind:
    name: str
    validate: Callable[[Any], Validated]
    trigger: str  # "issuance", "monthly", "daily" or "community" (its terms' granularity)


KINDS: dict[str, Kind] = {
    shares.PPA: Kind(shares.PPA, shares.validate_ppa, "issuance"),
    shares.PPA_SHAPED: Kind(shares.PPA_SHAPED, shares.validate_ppa_shaped, "issuance"),
    shares.STANDING_TRANSFER: Kind(
        shares.STANDING_TRANSFER, shares.validate_standing_transfer, "issuance"
    ),
    retirement.STANDING_RETIREMENT: Kind(
        retirement.STANDING_RETIREMENT, retirement.validate, "monthly"
    ),
    storage.STORAGE_BALANCING: Kind(storage.STORAGE_BALANCING, storage.validate, "daily"),
    community.COMMUNITY_SHARING: Kind(community.COMMUNITY_SHARING, community.validate, "community"),
}
