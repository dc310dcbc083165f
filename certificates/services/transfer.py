"""Transfers: a bundle, or its first units, to another open account, one at a time or as
an all-or-nothing batch; receiver acceptance (a pending transfer is a reservation at the
sender, delivered on acceptance, released on rejection or withdrawal); transfer policy.

Locks (`certificates.locks`): the bundles first, in primary-key order, in one statement
with the holder's permission (`storage.bundles_lock_for_move`); then the transfer row
(accept / reject / withdraw); the receiving account last, FOR KEY SHARE. The hot path's
writes are `storage`'s hand-written statements (see benchmarks/README.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from accounts.errors import NotOrganisationMember
from accounts.models import Account, Membership, Organisation, User
from accounts.permissions import user_can_act_for
from certificates import errors, events, locks, storage
from certificates.events import Move
from certificates.models import Bundle, Transfer, TransferPolicy
from certificates.services.common import (
    MAX_BATCH_ITEMS,
    Actor,
    Mandate,
    _apply_moves,
    _lock_sources,
    _subjects,
)
from certificates.services.reservation import certificate_units_deliver, certificate_units_release
from ledger.services import ledger_append
from registry.deferred_writes import deferred_writes


def _plan_transfers(
    *,
    actor: Actor,
    items: Sequence[tuple[int, int | None]],
    to_account_id: int | None,
    to_account_number: str | None,
    require_acceptance: bool,
    now: dt.datetime,
    mandate: Mandate | None = None,
) -> tuple[list[Move], Account]:
    """Lock, check and plan the moves of a transfer (single or batch); changes nothing.

    Receiver acceptance applies only across organisations: when the request or the
    receiving organisation's policy asks for it.
    """
    sources = _lock_sources(actor=actor, items=items, now=now, mandate=mandate)
    to_account, policy = locks.account_lock_receiving(to_account_id, to_account_number)
    moves = []
    for source in sources:
        bundle, account = source.bundle, source.account
        if account.pk == to_account.pk:
            raise errors.SameAccount(bundle_id=bundle.pk, account_id=account.pk)
        pending = (
            account.organisation_id != to_account.organisation_id
            and (require_acceptance or policy)
            and not (mandate is not None and mandate.receiver_agreed)
        )
        moves.append(
            Move(
                bundle=bundle,
                volume_wh=source.volume_wh,
                account_id=account.pk if pending else to_account.pk,
                status=Bundle.Status.RESERVED if pending else Bundle.Status.ACTIVE,
                from_account=account,
                pending=pending,
            )
        )
    return moves, to_account


def _record_transfers(
    moves: Sequence[Move], to_account: Account, actor: Actor, now: dt.datetime
) -> list[Transfer]:
    transfers = [
        Transfer(
            bundle=move.moved,
            source_id=move.bundle.pk,
            from_account=move.from_account,
            to_account=to_account,
            volume_wh=move.volume_wh,
            status=Transfer.Status.PENDING if move.pending else Transfer.Status.COMPLETED,
            created_by=None if isinstance(actor, str) else actor,
            created_at=now,
        )
        for move in moves
    ]
    storage.transfers_insert(transfers)
    return transfers


@transaction.atomic
@deferred_writes()  # the bundles' UPDATE travels with the next INSERT
def certificate_transfer(
    *,
    actor: Actor,
    bundle_id: int,
    to_account_id: int | None = None,
    to_account_number: str | None = None,
    volume_wh: int | None = None,
    require_acceptance: bool = False,
) -> Transfer:
    """Move a bundle, or its first `volume_wh` units (a split), to another open account
    (given by id or by its public number)."""
    now = timezone.now()
    moves, to_account = _plan_transfers(
        actor=actor,
        items=[(bundle_id, volume_wh)],
        to_account_id=to_account_id,
        to_account_number=to_account_number,
        require_acceptance=require_acceptance,
        now=now,
    )
    _apply_moves(moves)
    (transfer,) = _record_transfers(moves, to_account, actor, now)
    move = moves[0]
    ledger_append(
        kind=events.TRANSFERRED,
        actor=actor,
        subject=_subjects(moves, transfer, move.from_account, to_account),
        data=events.transfer_data(transfer, move),
        at=now,
    )
    return transfer


@transaction.atomic
@deferred_writes()  # the bundles' UPDATE travels with the next INSERT
def certificate_transfer_batch(
    *,
    actor: Actor,
    items: Sequence[tuple[int, int | None]],
    to_account_id: int | None = None,
    to_account_number: str | None = None,
    require_acceptance: bool = False,
    mandate: Mandate | None = None,
) -> list[Transfer]:
    """Move many bundles (whole or part) to one account, all or nothing, as one event.

    With a `mandate` (a contract's execution) the bundles must be the mandate account's,
    and the event carries the mandate's reference."""
    if not items:
        raise errors.InvalidVolume("A batch needs at least one item.", fields={"items": ["empty"]})
    if len(items) > MAX_BATCH_ITEMS:
        raise errors.InvalidVolume(
            f"A batch holds at most {MAX_BATCH_ITEMS} items.", fields={"items": ["too many"]}
        )
    now = timezone.now()
    moves, to_account = _plan_transfers(
        actor=actor,
        items=items,
        to_account_id=to_account_id,
        to_account_number=to_account_number,
        require_acceptance=require_acceptance,
        now=now,
        mandate=mandate,
    )
    _apply_moves(moves)
    transfers = _record_transfers(moves, to_account, actor, now)
    from_accounts = {m.from_account.pk: m.from_account for m in moves}
    ledger_append(
        kind=events.BATCH_TRANSFERRED,
        actor=actor,
        subject=_subjects(moves, *transfers, *from_accounts.values(), to_account),
        data={
            "to_account_id": to_account.pk,
            "transfers": [
                events.transfer_data(t, m) for t, m in zip(transfers, moves, strict=True)
            ],
        }
        | ({} if mandate is None else {"mandate": mandate.reference}),
        at=now,
    )
    return transfers


def _pending_transfer(transfer_id: int) -> Transfer:
    """Lock the reserved bundle (first, per the lock order), then the transfer."""
    bundle_id = Transfer.objects.filter(pk=transfer_id).values_list("bundle_id", flat=True).first()
    if bundle_id is None:
        raise errors.TransferNotFound(transfer_id=transfer_id)
    locks.bundles_lock([bundle_id])
    return locks.transfer_lock(transfer_id)


def _decide(*, actor: Actor, transfer_id: int, side: str, outcome: str, kind: str) -> Transfer:
    """Settle a pending transfer: its reservation is delivered (accepted) or released."""
    transfer = _pending_transfer(transfer_id)
    account = transfer.to_account if side == "receiver" else transfer.from_account
    if isinstance(actor, str) or not user_can_act_for(actor, account.organisation):
        raise errors.NotTransferParty(transfer_id=transfer_id)
    if transfer.status != Transfer.Status.PENDING:
        raise errors.TransferNotPending(transfer_id=transfer_id, status=transfer.status)
    now = timezone.now()
    if outcome == Transfer.Status.ACCEPTED:
        change = certificate_units_deliver(
            bundle_id=transfer.bundle_id, to_account_id=transfer.to_account_id, now=now
        )
    else:
        change = certificate_units_release(bundle_id=transfer.bundle_id)
    transfer.status = outcome
    transfer.decided_at = now
    transfer.save(update_fields=["status", "decided_at"])
    ledger_append(
        kind=kind,
        actor=actor,
        subject=[*change.subjects(), transfer, transfer.from_account, transfer.to_account],
        data=events.transfer_decision_data(transfer, change.bundle),
        at=now,
    )
    return transfer


@transaction.atomic
def certificate_transfer_accept(*, actor: User, transfer_id: int) -> Transfer:
    """The receiver accepts a pending transfer: the reserved units become theirs."""
    return _decide(
        actor=actor,
        transfer_id=transfer_id,
        side="receiver",
        outcome=Transfer.Status.ACCEPTED,
        kind=events.TRANSFER_ACCEPTED,
    )


@transaction.atomic
def certificate_transfer_reject(*, actor: User, transfer_id: int) -> Transfer:
    """The receiver refuses a pending transfer: the units are free again at the sender."""
    return _decide(
        actor=actor,
        transfer_id=transfer_id,
        side="receiver",
        outcome=Transfer.Status.REJECTED,
        kind=events.TRANSFER_REJECTED,
    )


@transaction.atomic
def certificate_transfer_withdraw(*, actor: User, transfer_id: int) -> Transfer:
    """The sender takes back a pending transfer: the units are free again."""
    return _decide(
        actor=actor,
        transfer_id=transfer_id,
        side="sender",
        outcome=Transfer.Status.WITHDRAWN,
        kind=events.TRANSFER_WITHDRAWN,
    )


@transaction.atomic
def transfer_policy_set(
    *, actor: User, organisation_id: int, require_acceptance: bool
) -> TransferPolicy:
    """An organisation's administrator decides whether incoming transfers wait for acceptance."""
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None or not user_can_act_for(
        actor, organisation, role=Membership.Role.ADMIN
    ):
        raise NotOrganisationMember(organisation_id=organisation_id)
    policy = locks.transfer_policy_lock(organisation)
    policy.require_acceptance = require_acceptance
    policy.save(update_fields=["require_acceptance", "updated_at"])
    ledger_append(
        kind=events.POLICY_UPDATED,
        actor=actor,
        subject=organisation,
        data={"organisation_id": organisation.pk, "require_acceptance": require_acceptance},
    )
    return policy
