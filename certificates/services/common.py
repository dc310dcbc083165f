"""Helpers shared by the certificate services: the checks a moving bundle must pass, the
split machinery (`_apply_moves`), the issuing body of an actor, and the account-close guard.

Locks are taken through `certificates.locks` (its docstring is the lock order); the
hand-written SQL is `certificates.storage`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from accounts.errors import AccountNotEmpty, NotIssuingBody
from accounts.models import Account, Membership, Organisation, User
from accounts.permissions import user_is_issuing_body
from certificates import errors, locks, storage
from certificates.events import Move
from certificates.models import Bundle
from registry.hooks import Hook

MAX_SAFE_WH = 2**53
MAX_BATCH_ITEMS = 1000
Actor = User | str

# Bundles that still count as held: they can move (active) or are promised (reserved).
LIVE = (Bundle.Status.ACTIVE, Bundle.Status.RESERVED)

# Called with the new Issuance inside the issuing transaction, after its event; must not
# write (start work with delay_on_commit). contracts registers its executions here.
ISSUED_HOOKS = Hook("certificates.issued")  # Callable[[Issuance], None]


@dataclass(frozen=True)
class Mandate:
    """A standing authority to move one account's bundles without a user acting: a
    contract the account's organisation agreed to (the caller checked that).

    `reference` goes into the event data (which contract, which execution);
    `receiver_agreed` says the receiving organisation agreed too, so its transfer policy
    does not hold the units back as a pending transfer.
    """

    holder_account_id: int
    reference: dict[str, Any]
    receiver_agreed: bool = False


def _issued(issuance) -> None:
    for hook in ISSUED_HOOKS:
        hook(issuance)


def _today(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date()


def _check_volume(volume_wh: Any) -> None:
    """None (the whole bundle) or a positive whole number of Wh."""
    if volume_wh is None:
        return
    if (
        isinstance(volume_wh, bool)
        or not isinstance(volume_wh, int)
        or not 0 < volume_wh <= MAX_SAFE_WH
    ):
        raise errors.InvalidVolume(volume_wh=volume_wh)


def _require_holder(held: storage.Held, mandate: Mandate | None = None) -> Account:
    """The bundle's account, if the actor may move out of it: as a member (operator or
    above), or under a mandate for exactly that account."""
    if mandate is not None:
        allowed = held.account.pk == mandate.holder_account_id and held.account.is_open
    else:
        allowed = held.may_move
    if not allowed:
        raise errors.NotBundleHolder(bundle_id=held.bundle.pk)
    return held.account


def _require_may_leave(account: Account) -> None:
    """Certificates leave trading and issuance accounts; a retirement account is final."""
    if account.kind == Account.Kind.RETIREMENT:
        raise errors.RetirementAccountFinal(account_id=account.pk)


def _check_movable(bundle: Bundle, today: dt.date) -> None:
    if bundle.status != Bundle.Status.ACTIVE:
        raise errors.BundleNotActive(bundle_id=bundle.pk, status=bundle.status_name)
    if bundle.expires_on is not None and today >= bundle.expires_on:
        raise errors.BundleExpired(bundle_id=bundle.pk, expires_on=bundle.expires_on.isoformat())


def _check_fits(bundle: Bundle, volume_wh: int) -> None:
    if volume_wh > bundle.volume_wh:
        raise errors.InsufficientVolume(
            bundle_id=bundle.pk, held_wh=bundle.volume_wh, requested_wh=volume_wh
        )


def _apply_moves(moves: Sequence[Move]) -> None:
    """Carry out moves on locked bundles: whole ones change in place, partial ones split.

    A split marks the source SPLIT and creates two children that partition its range:
    the moved part (the first `volume_wh` units) and the rest, which stays where it was.
    A handful of statements whatever the number of moves.
    """
    whole: dict[tuple[int, int], list[Bundle]] = defaultdict(list)
    split_ids: list[int] = []
    children: list[Bundle] = []
    for move in moves:
        source = move.bundle
        if move.is_whole:
            whole[(move.account_id, move.status)].append(source)
            source.account_id = move.account_id
            source.status = move.status
            move.moved, move.rest = source, None
            continue
        cut = source.unit_start + move.volume_wh
        common = {
            "device_id": source.device_id,
            "issuance_id": source.issuance_id,
            "parent_id": source.pk,
            "period_start": source.period_start,
            "period_end": source.period_end,
            "expires_on": source.expires_on,
        }
        move.moved = Bundle(
            **common,
            account_id=move.account_id,
            unit_start=source.unit_start,
            unit_end=cut,
            status=move.status,
        )
        move.rest = Bundle(
            **common,
            account_id=source.account_id,
            unit_start=cut,
            unit_end=source.unit_end,
            status=Bundle.Status.ACTIVE,
        )
        children += [move.moved, move.rest]
        source.status = Bundle.Status.SPLIT
        split_ids.append(source.pk)
    for (account_id, status), bundles in whole.items():
        storage.bundles_update([b.pk for b in bundles], status=status, account_id=account_id)
    if split_ids:
        storage.bundles_update(split_ids, status=Bundle.Status.SPLIT)
        storage.bundles_insert(children)


def _subjects(moves: Sequence[Move], *extra: Any) -> list[Any]:
    subjects: list[Any] = []
    for move in moves:
        subjects += move.bundles()
    return subjects + [item for item in extra if item is not None]


@dataclass(frozen=True)
class Source:
    """A locked bundle that may leave its holder: `volume_wh` of it, from `account`."""

    bundle: Bundle
    volume_wh: int
    account: Account


def _lock_sources(
    *,
    actor: Actor,
    items: Sequence[tuple[int, int | None]],
    now: dt.datetime,
    mandate: Mandate | None = None,
    leaving: bool = True,
) -> list[Source]:
    """Lock bundles (one statement, pk order) and check each as units leaving its holder.

    `items` are (bundle id, volume or None for the whole bundle). Raises on a repeated
    bundle, a bad volume, a missing bundle, an actor who does not act for the holder, a
    bundle that is not active or has expired, and a volume larger than the bundle; when the
    units are `leaving` the account (transfer, reservation; not a retirement, which stays),
    on a retirement account, which nothing leaves.
    """
    seen: set[int] = set()
    for bundle_id, volume in items:
        if bundle_id in seen:
            raise errors.DuplicateBundle(bundle_id=bundle_id)
        seen.add(bundle_id)
        _check_volume(volume)
    held = locks.bundles_lock_held(seen, actor)
    today = _today(now)
    sources = []
    for bundle_id, volume in items:
        bundle = held[bundle_id].bundle
        account = _require_holder(held[bundle_id], mandate)
        if leaving:
            _require_may_leave(account)
        _check_movable(bundle, today)
        volume = bundle.volume_wh if volume is None else volume
        _check_fits(bundle, volume)
        sources.append(Source(bundle, volume, account))
    return sources


def _issuing_body_of(actor: Actor) -> Organisation | None:
    """The issuing body an actor works for; for the system, the registry's first one."""
    orgs = Organisation.objects.filter(
        is_issuing_body=True, status=Organisation.Status.APPROVED
    ).order_by("pk")
    if not isinstance(actor, str):
        orgs = orgs.filter(
            memberships__user=actor,
            memberships__role__in=[Membership.Role.OPERATOR, Membership.Role.ADMIN],
        )
    return orgs.first()


def _require_issuing_body(actor: Actor) -> None:
    if isinstance(actor, str):
        if not actor.startswith("system"):
            raise NotIssuingBody()
        return
    if not user_is_issuing_body(actor):
        raise NotIssuingBody()


def account_close_guard(account: Account) -> None:
    """accounts.services.ACCOUNT_CLOSE_GUARDS: an account holding live bundles stays open."""
    held = Bundle.objects.filter(account_id=account.pk, status__in=LIVE).exists()
    if held:
        raise AccountNotEmpty(
            "The account still holds active or reserved certificates.", account_id=account.pk
        )
