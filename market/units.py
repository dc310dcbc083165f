"""The market's only door to certificate units: the certificates app's public reservation
service (reserve for an offer, release on cancel, deliver on a fill).

Those services append no ledger event and run inside the caller's transaction: the
market's own event names `change.subjects()` and carries `change.data()`, so the ledger
says which units each order held and where each fill sent them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

try:
    from certificates.services import (
        certificate_units_deliver,
        certificate_units_release,
        certificate_units_reserve,
    )
except ImportError:  # until the architecture issue's public service is on main
    from market._units_interim import (
        certificate_units_deliver,
        certificate_units_release,
        certificate_units_reserve,
    )


@dataclass
class UnitsLog:
    """The unit changes of one market operation, for its ledger event."""

    changes: list[Any] = field(default_factory=list)

    def subjects(self) -> list[Any]:
        return [s for change in self.changes for s in change.subjects()]

    def data(self) -> list[dict[str, Any]]:
        return [change.data() for change in self.changes]


def units_reserve(
    log: UnitsLog, *, actor: Any, bundle_id: int, volume_wh: int | None, now: dt.datetime
) -> Any:
    """Reserve a bundle, or its first `volume_wh` units; returns the reserved bundle."""
    change = certificate_units_reserve(
        actor=actor, bundle_id=bundle_id, volume_wh=volume_wh, now=now
    )
    log.changes.append(change)
    return change.bundle


def units_release(log: UnitsLog, *, bundle_id: int) -> None:
    log.changes.append(certificate_units_release(bundle_id=bundle_id))


def units_deliver(
    log: UnitsLog,
    *,
    bundle_id: int,
    held_wh: int,
    volume_wh: int,
    to_account_id: int,
    seller: Any,
    now: dt.datetime,
) -> tuple[Any, int | None]:
    """Deliver `volume_wh` of an offer's reserved bundle (holding `held_wh`) to the buyer.

    Returns (the delivered bundle, the bundle still reserved for the offer or None). A
    partial fill splits the reserved piece: release it, reserve the traded volume (the
    first units, a split), deliver that, and reserve the rest again for the offer.
    """
    if volume_wh == held_wh:
        change = certificate_units_deliver(
            bundle_id=bundle_id, to_account_id=to_account_id, now=now
        )
        log.changes.append(change)
        return change.bundle, None
    units_release(log, bundle_id=bundle_id)
    piece = certificate_units_reserve(
        actor=seller, bundle_id=bundle_id, volume_wh=volume_wh, now=now
    )
    log.changes.append(piece)
    delivered = certificate_units_deliver(
        bundle_id=piece.bundle.pk, to_account_id=to_account_id, now=now
    )
    log.changes.append(delivered)
    rest = units_reserve(log, actor=seller, bundle_id=piece.rest.pk, volume_wh=None, now=now)
    return delivered.bundle, rest.pk
