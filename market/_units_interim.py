"""INTERIM: the certificates app's public reservation service, until it lands on main.

The architecture issue adds `certificate_units_reserve / _release / _deliver` to
`certificates.services` (branch arch-certs). Until then this module implements the same
signatures with the certificates app's own helpers, so the market can be built and tested
against them; `market.units` imports the real ones as soon as they exist and this file is
deleted on the rebase that brings them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from certificates import errors, hotpath
from certificates.events import Move
from certificates.models import Bundle
from certificates.services import (
    _apply_moves,
    _check_fits,
    _check_movable,
    _check_volume,
    _lock_bundles,
    _lock_held,
    _lock_receiving_account,
    _require_holder,
    _today,
)


@dataclass(frozen=True)
class UnitsChange:
    """What a reserve, release or deliver changed (same shape as the public service's)."""

    bundle: Bundle
    parent: Bundle | None = None
    rest: Bundle | None = None

    def subjects(self) -> list[Bundle]:
        return [b for b in (self.parent, self.bundle, self.rest) if b is not None]

    def data(self) -> dict[str, Any]:
        source = self.parent or self.bundle
        return {
            "bundle_id": source.pk,
            "device_id": source.device_id,
            "moved_bundle_id": self.bundle.pk,
            "rest_bundle_id": self.rest.pk if self.rest is not None else None,
            "unit_start": self.bundle.unit_start,
            "unit_end": self.bundle.unit_end,
            "volume_wh": self.bundle.unit_end - self.bundle.unit_start,
        }


def certificate_units_reserve(
    *, actor: Any, bundle_id: int, volume_wh: int | None = None, now: dt.datetime | None = None
) -> UnitsChange:
    _check_volume(volume_wh)
    held = _lock_held([bundle_id], actor)[bundle_id]
    account = _require_holder(held)
    bundle = held.bundle
    _check_movable(bundle, _today(now or timezone.now()))
    volume = bundle.volume_wh if volume_wh is None else volume_wh
    _check_fits(bundle, volume)
    move = Move(
        bundle=bundle, volume_wh=volume, account_id=account.pk, status=Bundle.Status.RESERVED
    )
    _apply_moves([move])
    split = move.moved is not bundle
    return UnitsChange(move.moved, bundle if split else None, move.rest)


def certificate_units_release(*, bundle_id: int) -> UnitsChange:
    bundle = _lock_bundles([bundle_id])[bundle_id]
    if bundle.status != Bundle.Status.RESERVED:
        raise errors.BundleNotActive(bundle_id=bundle.pk, status=bundle.status_name)
    hotpath.bundles_update([bundle.pk], status=Bundle.Status.ACTIVE, account_id=bundle.account_id)
    bundle.status = Bundle.Status.ACTIVE
    return UnitsChange(bundle)


def certificate_units_deliver(
    *, bundle_id: int, to_account_id: int, now: dt.datetime | None = None
) -> UnitsChange:
    bundle = _lock_bundles([bundle_id])[bundle_id]
    if bundle.status != Bundle.Status.RESERVED:
        raise errors.BundleNotActive(bundle_id=bundle.pk, status=bundle.status_name)
    if bundle.expires_on is not None and _today(now or timezone.now()) >= bundle.expires_on:
        raise errors.BundleExpired(bundle_id=bundle.pk)
    to_account, _policy = _lock_receiving_account(to_account_id)
    hotpath.bundles_update([bundle.pk], status=Bundle.Status.ACTIVE, account_id=to_account.pk)
    bundle.status, bundle.account_id = Bundle.Status.ACTIVE, to_account.pk
    return UnitsChange(bundle)
