"""The end of a certificate's life here: retirement for a beneficiary (final, with a
statement), expiry past the grid area's date, and withdrawal by the issuing body.

Locks (`certificates.locks`): bundles first, in primary-key order; expiry skips bundles a
transfer in flight holds (SKIP LOCKED).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from certificates import errors, events, locks, storage
from certificates.claims import claim_commitment, retirement_claim
from certificates.events import Move
from certificates.models import (
    Bundle,
    IssuedPeriod,
    Retirement,
    RetirementItem,
    Transfer,
    Withdrawal,
    WithdrawalItem,
)
from certificates.services.common import (
    MAX_BATCH_ITEMS,
    Actor,
    Mandate,
    _apply_moves,
    _lock_sources,
    _require_issuing_body,
    _subjects,
    _today,
)
from ledger.services import ledger_append, ledger_append_many
from registry import model_rows
from registry.countries import country_code_valid
from registry.errors import InvalidInput

EXPIRE_BATCH = 1000


def _check_claim(
    *,
    beneficiary_name: str,
    beneficiary_country: str,
    consumption_start: dt.datetime,
    consumption_end: dt.datetime,
    purpose: str,
) -> None:
    if not (beneficiary_name or "").strip() or not country_code_valid(beneficiary_country):
        raise errors.BeneficiaryRequired(
            fields={"beneficiary_name": ["required"], "beneficiary_country": ["ISO 3166 alpha-2"]}
        )
    if purpose not in Retirement.Purpose.values:
        raise InvalidInput(
            "Unknown purpose.", fields={"purpose": sorted(Retirement.Purpose.values)}
        )
    if consumption_start.tzinfo is None or consumption_end.tzinfo is None:
        raise errors.InvalidPeriod("Consumption times must carry a time zone.")
    if consumption_end <= consumption_start:
        raise errors.InvalidPeriod("The consumption period must end after it starts.")


def _new_retirement(
    *,
    account: Account,
    actor: Actor,
    now: dt.datetime,
    moves: Sequence[Move],
    beneficiary_name: str,
    beneficiary_country: str,
    consumption_start: dt.datetime,
    consumption_end: dt.datetime,
    location: str,
    purpose: str,
) -> Retirement:
    """An unsaved retirement of `moves` with its salted claim commitment."""
    salt = secrets.token_hex(16)
    retirement = Retirement(
        account=account,  # as locked, its organisation's name loaded: what the response shows
        retired_by=None if isinstance(actor, str) else actor,
        retired_at=now,
        volume_wh=sum(m.volume_wh for m in moves),
        beneficiary_name=beneficiary_name.strip(),
        beneficiary_country=beneficiary_country,
        consumption_start=consumption_start,
        consumption_end=consumption_end,
        location=location.strip(),
        purpose=purpose,
        claim_salt=salt,
    )
    retirement.claim_commitment = claim_commitment(retirement_claim(retirement), salt)
    return retirement


def _insert_chunked(rows: Sequence[Retirement] | Sequence[RetirementItem]) -> None:
    """Insert new rows of one model, INSERT_CHUNK a statement (SQLite's bound-value limit)."""
    for offset in range(0, len(rows), storage.INSERT_CHUNK):
        model_rows.insert(rows[offset : offset + storage.INSERT_CHUNK])


def _with_items(retirement: Retirement, items: list[RetirementItem]) -> None:
    """Give the retirement its items as `prefetch_related("items")` would: the response
    lists them, and the service has just written them (measured: benchmarks/README.md,
    "Retirement response"). Stored the way `prefetch_related_objects` stores them."""
    queryset = retirement.items.all()  # lazy: no statement
    queryset._result_cache = list(items)
    queryset._prefetch_done = True
    retirement._prefetched_objects_cache = {"items": queryset}


@transaction.atomic
def certificate_retire(
    *,
    actor: Actor,
    items: Sequence[tuple[int, int | None]],
    beneficiary_name: str,
    beneficiary_country: str,
    consumption_start: dt.datetime,
    consumption_end: dt.datetime,
    purpose: str,
    location: str = "",
    mandate: Mandate | None = None,
) -> Retirement:
    """Retire bundles (whole or first `volume` units) for a beneficiary: final, with a statement.

    With a `mandate` (a contract's execution) the bundles must be the mandate account's."""
    _check_claim(
        beneficiary_name=beneficiary_name,
        beneficiary_country=beneficiary_country,
        consumption_start=consumption_start,
        consumption_end=consumption_end,
        purpose=purpose,
    )
    if not items or len(items) > MAX_BATCH_ITEMS:
        raise errors.InvalidVolume(
            f"Retire between 1 and {MAX_BATCH_ITEMS} bundles.", fields={"items": ["count"]}
        )
    now = timezone.now()
    moves: list[Move] = []
    accounts: dict[int, Account] = {}
    # Retiring is allowed from every kind of account, a retirement account included:
    # the certificates stay where they are, marked retired.
    for source in _lock_sources(actor=actor, items=items, now=now, mandate=mandate, leaving=False):
        accounts[source.account.pk] = source.account
        moves.append(
            Move(
                bundle=source.bundle,
                volume_wh=source.volume_wh,
                account_id=source.account.pk,
                status=Bundle.Status.RETIRED,
            )
        )
    if len(accounts) > 1:
        raise errors.InvalidVolume(
            "Retire from one account at a time.", fields={"items": ["several accounts"]}
        )
    _apply_moves(moves)
    (account,) = accounts.values()
    retirement = _new_retirement(
        account=account,
        actor=actor,
        now=now,
        moves=moves,
        beneficiary_name=beneficiary_name,
        beneficiary_country=beneficiary_country,
        consumption_start=consumption_start,
        consumption_end=consumption_end,
        location=location,
        purpose=purpose,
    )
    model_rows.insert([retirement])
    items = [RetirementItem(retirement=retirement, bundle=m.moved) for m in moves]
    model_rows.insert(items)
    _with_items(retirement, items)
    ledger_append(
        kind=events.RETIRED,
        actor=actor,
        subject=_subjects(moves, retirement, ("account", retirement.account_id)),
        data={
            "retirement_id": retirement.pk,
            "public_id": retirement.public_id,
            "account_id": retirement.account_id,
            "volume_wh": retirement.volume_wh,
            "beneficiary_country": beneficiary_country,
            "consumption_start": consumption_start,
            "consumption_end": consumption_end,
            "purpose": purpose,
            "claim_commitment": retirement.claim_commitment,
            "items": [m.data() for m in moves],
        }
        | ({} if mandate is None else {"mandate": mandate.reference}),
    )
    return retirement


@transaction.atomic
def certificate_retire_periods(
    *,
    actor: Actor,
    periods: Sequence[tuple[dt.datetime, dt.datetime, Sequence[tuple[int, int | None]]]],
    beneficiary_name: str,
    beneficiary_country: str,
    purpose: str,
    location: str = "",
    mandate: Mandate | None = None,
) -> list[Retirement]:
    """One retirement per (consumption start, consumption end, items), for one beneficiary:
    what `certificate_retire` per period does (the same rows, statements and one
    `certificate.retired` event each, in order), in a handful of statements for all of
    them: one lock of every bundle (pk order), the bundle updates and splits, one INSERT of
    the retirements, one of their items, and the events in one multi-row INSERT per few
    hundred. For a month of hourly matching (up to 744 hours), which per call costs
    several statements per hour. At most MAX_BATCH_ITEMS bundles in all; one account per
    retirement."""
    if not periods:
        return []
    for start, end, items in periods:
        _check_claim(
            beneficiary_name=beneficiary_name,
            beneficiary_country=beneficiary_country,
            consumption_start=start,
            consumption_end=end,
            purpose=purpose,
        )
        if not items:
            raise errors.InvalidVolume("Retire at least one bundle.", fields={"items": ["count"]})
    every = [item for _start, _end, items in periods for item in items]
    if len(every) > MAX_BATCH_ITEMS:
        raise errors.InvalidVolume(
            f"Retire between 1 and {MAX_BATCH_ITEMS} bundles.", fields={"items": ["count"]}
        )
    now = timezone.now()
    sources = _lock_sources(actor=actor, items=every, now=now, mandate=mandate, leaving=False)
    claims: list[tuple[Retirement, list[Move]]] = []
    taken = 0
    for start, end, items in periods:
        moves = [
            Move(
                bundle=source.bundle,
                volume_wh=source.volume_wh,
                account_id=source.account.pk,
                status=Bundle.Status.RETIRED,
            )
            for source in sources[taken : taken + len(items)]
        ]
        taken += len(items)
        if len({m.account_id for m in moves}) > 1:
            raise errors.InvalidVolume(
                "Retire from one account at a time.", fields={"items": ["several accounts"]}
            )
        retirement = _new_retirement(
            account=sources[taken - 1].account,
            actor=actor,
            now=now,
            moves=moves,
            beneficiary_name=beneficiary_name,
            beneficiary_country=beneficiary_country,
            consumption_start=start,
            consumption_end=end,
            location=location,
            purpose=purpose,
        )
        claims.append((retirement, moves))
    _apply_moves([m for _retirement, moves in claims for m in moves])
    retirements = [retirement for retirement, _moves in claims]
    _insert_chunked(retirements)
    groups = [
        [RetirementItem(retirement=retirement, bundle=m.moved) for m in moves]
        for retirement, moves in claims
    ]
    _insert_chunked([item for group in groups for item in group])
    for (retirement, _moves), group in zip(claims, groups, strict=True):
        _with_items(retirement, group)
    ledger_append_many(
        kind=events.RETIRED,
        actor=actor,
        events=[
            (
                _subjects(moves, retirement, ("account", retirement.account_id)),
                {
                    "retirement_id": retirement.pk,
                    "public_id": retirement.public_id,
                    "account_id": retirement.account_id,
                    "volume_wh": retirement.volume_wh,
                    "beneficiary_country": beneficiary_country,
                    "consumption_start": retirement.consumption_start,
                    "consumption_end": retirement.consumption_end,
                    "purpose": purpose,
                    "claim_commitment": retirement.claim_commitment,
                    "items": [m.data() for m in moves],
                }
                | ({} if mandate is None else {"mandate": mandate.reference}),
            )
            for retirement, moves in claims
        ],
    )
    return retirements


# ---------------------------------------------------------------- expiry and withdrawal


@transaction.atomic
def certificate_expire_due(
    *, now: dt.datetime | None = None, limit: int = EXPIRE_BATCH
) -> list[int]:
    """Expire up to `limit` active bundles past their expiry date; one event for the lot.

    Bundles locked by a transfer in flight are skipped (SKIP LOCKED) and expire on the
    next run. Reserved bundles wait for their transfer's outcome.
    """
    now = now or timezone.now()
    today = _today(now)
    ids = locks.bundles_lock_due_for_expiry(today, limit)
    if not ids:
        return []
    Bundle.objects.filter(pk__in=ids).update(status=Bundle.Status.EXPIRED)
    accounts = sorted(set(Bundle.objects.filter(pk__in=ids).values_list("account_id", flat=True)))
    ledger_append(
        kind=events.EXPIRED,
        actor="system:expiry",
        subject=[*(("bundle", pk) for pk in ids), *(("account", pk) for pk in accounts)],
        data={"on": today, "bundle_ids": ids},
    )
    return ids


@transaction.atomic
def certificate_withdraw(
    *,
    actor: User,
    reason: str,
    bundle_ids: Sequence[int] = (),
    device_id: int | None = None,
    period_start: dt.datetime | None = None,
    period_end: dt.datetime | None = None,
) -> Withdrawal:
    """The issuing body withdraws certificates issued in error, wherever they are held.

    Give bundles (their split descendants are included) and/or a device and period.
    Active, reserved and expired bundles become WITHDRAWN (a pending transfer of them is
    cancelled); retired ones keep their status and are flagged by the withdrawal record.
    A production period none of whose units are left un-withdrawn is released, so that
    corrected readings can be issued again (under new unit numbers).
    """
    _require_issuing_body(actor)
    if not reason or not reason.strip():
        raise errors.ReasonRequired(fields={"reason": ["required"]})
    roots = set(bundle_ids)
    missing = roots - set(Bundle.objects.filter(pk__in=roots).values_list("pk", flat=True))
    if missing:
        raise errors.BundleNotFound(bundle_ids=sorted(missing))
    if device_id is not None:
        if period_start is None or period_end is None or period_end <= period_start:
            raise errors.InvalidPeriod("Give the period to withdraw (start before end).")
        roots |= set(
            Bundle.objects.filter(
                device_id=device_id,
                parent__isnull=True,
                period_start__lt=period_end,
                period_end__gt=period_start,
            ).values_list("pk", flat=True)
        )
    if not roots:
        raise errors.BundleNotFound("Nothing matches: give bundles or a device and period.")
    return _withdraw_trees(
        actor=actor,
        reason=reason,
        roots=roots,
        nothing_left=errors.BundleNotActive(
            "Everything selected was withdrawn already.", bundle_ids=sorted(roots)
        ),
    )


def _withdraw_trees(
    *,
    actor: User,
    reason: str,
    roots: set[int],
    nothing_left: Exception,
    extra_data: dict[str, Any] | None = None,
) -> Withdrawal:
    """Withdraw every leaf under `roots` (lock, then look for concurrent splits again);
    raise `nothing_left` when every leaf carries a withdrawal already."""
    locked: dict[int, Bundle] = {}
    pending = storage.bundle_tree_ids(roots)
    while pending:
        # A concurrent split may add children after we read the tree: lock, then look again.
        locked |= locks.bundles_lock(pending)
        splits = [pk for pk, b in locked.items() if b.status == Bundle.Status.SPLIT]
        pending = storage.bundle_tree_ids(splits) - set(locked)
    leaves = [b for pk, b in sorted(locked.items()) if b.status != Bundle.Status.SPLIT]
    already = set(
        WithdrawalItem.objects.filter(bundle_id__in=[b.pk for b in leaves]).values_list(
            "bundle_id", flat=True
        )
    )
    now = timezone.now()
    withdrawal = Withdrawal.objects.create(
        reason=reason.strip(), withdrawn_by=actor, withdrawn_at=now
    )
    items, withdrawn, flagged = [], [], []
    for bundle in leaves:
        if bundle.pk in already or bundle.status == Bundle.Status.WITHDRAWN:
            continue
        items.append(
            WithdrawalItem(withdrawal=withdrawal, bundle=bundle, previous_status=bundle.status)
        )
        if bundle.status in (Bundle.Status.RETIRED, Bundle.Status.EXPORTED, Bundle.Status.STORED):
            flagged.append(bundle)
        else:
            withdrawn.append(bundle)
    if not items:
        raise nothing_left
    reserved = [b.pk for b in withdrawn if b.status == Bundle.Status.RESERVED]
    cancelled = list(
        Transfer.objects.filter(bundle_id__in=reserved, status=Transfer.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    Transfer.objects.filter(pk__in=cancelled).update(
        status=Transfer.Status.CANCELLED, decided_at=now
    )
    Bundle.objects.filter(pk__in=[b.pk for b in withdrawn]).update(status=Bundle.Status.WITHDRAWN)
    WithdrawalItem.objects.bulk_create(items)
    withdrawal.volume_wh = sum(item.bundle.volume_wh for item in items)
    withdrawal.save(update_fields=["volume_wh"])
    released, issuances = _release_periods({(b.device_id, b.period_start) for b in leaves}, now)
    ledger_append(
        kind=events.WITHDRAWN,
        actor=actor,
        subject=[
            withdrawal,
            *(item.bundle for item in items),
            *(("account", pk) for pk in sorted({b.account_id for b in withdrawn})),
            *(("transfer", pk) for pk in cancelled),
            *(("issuance", pk) for pk in issuances),
        ],
        data={
            "withdrawal_id": withdrawal.pk,
            "reason": withdrawal.reason,
            "withdrawn_bundle_ids": [b.pk for b in withdrawn],
            "flagged_bundle_ids": [b.pk for b in flagged],
            "cancelled_transfer_ids": cancelled,
            "released_periods": released,
            "volume_wh": withdrawal.volume_wh,
            **(extra_data or {}),
        },
    )
    return withdrawal


def _release_periods(
    keys: set[tuple[int, dt.datetime]], now: dt.datetime
) -> tuple[list[list[Any]], list[int]]:
    """Release issued periods all of whose current bundles carry a withdrawal record;
    return them and the issuances they belong to."""
    released: list[list[Any]] = []
    issuances: set[int] = set()
    by_device: dict[int, set[dt.datetime]] = defaultdict(set)
    for device_id, start in keys:
        by_device[device_id].add(start)
    for device_id, starts in sorted(by_device.items()):
        kept = set(
            Bundle.objects.filter(device_id=device_id, period_start__in=starts)
            .exclude(status=Bundle.Status.SPLIT)
            .filter(withdrawal_item__isnull=True)
            .values_list("period_start", flat=True)
        )
        periods = IssuedPeriod.objects.filter(
            device_id=device_id, period_start__in=starts - kept, withdrawn_at__isnull=True
        ).order_by("period_start")
        rows = list(periods.values_list("pk", "period_start", "period_end", "issuance_id"))
        IssuedPeriod.objects.filter(pk__in=[pk for pk, *_ in rows]).update(withdrawn_at=now)
        released += [[device_id, start, end] for _pk, start, end, _issuance in rows]
        issuances.update(issuance for *_, issuance in rows)
    return released, sorted(issuances)
