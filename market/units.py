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

from certificates.services import (
    certificate_units_deliver,
    certificate_units_release,
    certificate_units_reserve,
)

RESERVE, RELEASE, DELIVER = "reserve", "release", "deliver"


@dataclass
class UnitsLog:
    """The unit changes of one market operation, in order, for its ledger event: each is
    the certificates service's move-shaped data plus the action and the account holding
    the bundle afterwards (what a replay needs to follow the units)."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    bundles: list[Any] = field(default_factory=list)

    def add(self, action: str, change: Any) -> Any:
        """Record a change as it is now (later changes may touch the same bundles)."""
        account_id = change.bundle.account_id
        self.changes.append({"action": action, **change.data(), "account_id": account_id})
        self.bundles += [*change.subjects(), ("account", account_id)]
        return change

    def subjects(self) -> list[Any]:
        return list(self.bundles)

    def data(self) -> list[dict[str, Any]]:
        return list(self.changes)


def units_reserve(
    log: UnitsLog, *, actor: Any, bundle_id: int, volume_wh: int | None, now: dt.datetime
) -> Any:
    """Reserve a bundle, or its first `volume_wh` units; returns the reserved bundle."""
    change = certificate_units_reserve(
        actor=actor, bundle_id=bundle_id, volume_wh=volume_wh, now=now
    )
    return log.add(RESERVE, change).bundle


def units_release(log: UnitsLog, *, bundle_id: int) -> None:
    log.add(RELEASE, certificate_units_release(bundle_id=bundle_id))


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
        return log.add(DELIVER, change).bundle, None
    units_release(log, bundle_id=bundle_id)
    piece = certificate_units_reserve(
        actor=seller, bundle_id=bundle_id, volume_wh=volume_wh, now=now
    )
    log.add(RESERVE, piece)
    delivered = certificate_units_deliver(
        bundle_id=piece.bundle.pk, to_account_id=to_account_id, now=now
    )
    log.add(DELIVER, delivered)
    rest = units_reserve(log, actor=seller, bundle_id=piece.rest.pk, volume_wh=None, now=now)
    return delivered.bundle, rest.pk
