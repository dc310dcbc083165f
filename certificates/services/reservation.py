"""Certificate units as a resource other apps can hold: reserve, release, deliver.

A reservation sets units aside in the account that holds them (status RESERVED): they
cannot move, retire, expire or be reserved again until the holder of the reservation
releases them (ACTIVE again, same account) or delivers them (ACTIVE in a receiving
account). Pending transfers are reservations (`certificate_transfer` with acceptance);
the market's escrow and contracts use the same three functions.

The contract:

- Call them inside your own `transaction.atomic()`; they refuse to run outside one
  (`UnitsChangeOutsideTransaction`), so that the change and your event commit or roll
  back together.
- They append NO ledger event. Your service appends its own event, in the same
  transaction, naming `change.subjects()` (and `change.data()` where it describes the
  units), e.g. `ledger_append(kind="market.order_placed", subject=[*change.subjects(),
  order], data={..., "units": change.data()})`. A transfer's acceptance, rejection and
  withdrawal are built this way, and their events are what they were before.
- Locks follow `certificates.locks`: the bundle first (FOR UPDATE, primary-key order),
  then, for a delivery, the receiving account (FOR KEY SHARE). A caller that also locks
  rows of its own takes them in one fixed order relative to these, the same in every
  one of its services, so that two of its writers never wait on each other crosswise.
- Refusals are `DomainError`s with the codes a transfer's source gets (not_bundle_holder,
  bundle_not_active, bundle_expired, insufficient_volume, bundle_not_found,
  invalid_volume) plus bundle_not_reserved, account_not_found and account_closed.

Transfers, retirement and reservation share their first half, `services.common.
_lock_sources` (one statement locks every bundle and reads the actor's permission, then
the source checks), and the split machinery, `services.common._apply_moves`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from certificates import errors, locks, storage
from certificates.events import Move
from certificates.models import Bundle
from certificates.services.common import Actor, _apply_moves, _lock_sources, _today


@dataclass(frozen=True)
class UnitsChange:
    """What a reservation function changed, for the caller's ledger event.

    `bundle` is the reserved (released, delivered) bundle as it is now; `parent` and
    `rest` are the split source and the remainder left ACTIVE with the holder, when only
    the first units of a bundle were reserved. `from_account_id` is the holder before a
    delivery.
    """

    bundle: Bundle
    parent: Bundle | None = None
    rest: Bundle | None = None
    from_account_id: int | None = None

    @classmethod
    def from_move(cls, move: Move) -> UnitsChange:
        assert move.moved is not None
        split = move.moved is not move.bundle
        return cls(bundle=move.moved, parent=move.bundle if split else None, rest=move.rest)

    @property
    def volume_wh(self) -> int:
        return self.bundle.unit_end - self.bundle.unit_start

    def subjects(self) -> list[Any]:
        """What the caller's event must name: split source, the bundle, the rest, and the
        accounts whose holdings changed (the holder; both accounts of a delivery)."""
        bundles = [b for b in (self.parent, self.bundle, self.rest) if b is not None]
        accounts = [self.from_account_id] if self.from_account_id is not None else []
        accounts += [b.account_id for b in bundles]
        return [*bundles, *(("account", pk) for pk in dict.fromkeys(accounts))]

    def data(self) -> dict[str, Any]:
        """The units in the caller's event data, shaped like a transfer's move."""
        source = self.parent or self.bundle
        return {
            "bundle_id": source.pk,
            "device_id": source.device_id,
            "moved_bundle_id": self.bundle.pk,
            "rest_bundle_id": self.rest.pk if self.rest is not None else None,
            "unit_start": self.bundle.unit_start,
            "unit_end": self.bundle.unit_end,
            "volume_wh": self.volume_wh,
        }


def _require_transaction(action: str) -> None:
    if not connection.in_atomic_block:
        raise errors.UnitsChangeOutsideTransaction(action=action)


def _lock_reserved(bundle_id: int) -> Bundle:
    bundle = locks.bundles_lock([bundle_id])[bundle_id]
    if bundle.status != Bundle.Status.RESERVED:
        raise errors.BundleNotReserved(bundle_id=bundle.pk, status=bundle.status_name)
    return bundle


def certificate_units_reserve(
    *, actor: Actor, bundle_id: int, volume_wh: int | None = None, now: dt.datetime | None = None
) -> UnitsChange:
    """Reserve a bundle, or its first `volume_wh` units (a split), in the account holding it.

    The actor must act for the holder, as for a transfer. No event: the caller appends it.
    """
    _require_transaction("reserve")
    now = now or timezone.now()
    (source,) = _lock_sources(actor=actor, items=[(bundle_id, volume_wh)], now=now)
    move = Move(
        bundle=source.bundle,
        volume_wh=source.volume_wh,
        account_id=source.account.pk,
        status=Bundle.Status.RESERVED,
        from_account=source.account,
        pending=True,
    )
    _apply_moves([move])
    return UnitsChange.from_move(move)


def certificate_units_release(*, bundle_id: int) -> UnitsChange:
    """A reserved bundle becomes active again in the account that holds it. No event."""
    _require_transaction("release")
    bundle = _lock_reserved(bundle_id)
    bundle.status = Bundle.Status.ACTIVE
    storage.bundles_update([bundle.pk], status=bundle.status, account_id=bundle.account_id)
    return UnitsChange(bundle=bundle)


def certificate_units_deliver(
    *, bundle_id: int, to_account_id: int, now: dt.datetime | None = None
) -> UnitsChange:
    """A reserved bundle becomes active in an open receiving account, unless it has expired
    meanwhile. No event."""
    _require_transaction("deliver")
    now = now or timezone.now()
    bundle = _lock_reserved(bundle_id)
    to_account, _policy = locks.account_lock_receiving(to_account_id)
    if bundle.expires_on is not None and _today(now) >= bundle.expires_on:
        raise errors.BundleExpired(bundle_id=bundle.pk)
    from_account_id = bundle.account_id
    bundle.account_id = to_account.pk
    bundle.status = Bundle.Status.ACTIVE
    storage.bundles_update([bundle.pk], status=bundle.status, account_id=bundle.account_id)
    return UnitsChange(bundle=bundle, from_account_id=from_account_id)
