"""Row locks of the certificates app, each taken in primary-key order.

The lock order (PostgreSQL; SQLite serialises writers with IMMEDIATE transactions):

1. Bundle rows first, FOR UPDATE, lowest id first (`bundles_lock`, or `bundles_lock_held`
   on the transfer, retirement, reservation and export paths, which reads the holder's
   permission in the same statement). Two writers touching the same bundles queue on the
   lowest id instead of deadlocking.
2. Then the rows the operation is about: a transfer (accept / reject / withdraw), an
   export (its settlement), an issuance request, a transfer policy, or the device's unit
   counter, which is the
   per-device issuance lock (issuance touches no existing bundle).
3. A receiving account last, FOR KEY SHARE (`account_lock_receiving`; a cut's several at
   once in id order, `accounts_lock_receiving`): it waits for a
   concurrent `account_close` (FOR UPDATE) and then sees the account closed, while any
   number of transfers into the same account run side by side.

No global ledger row is locked: `ledger_append` only queues the event; the ledger's
integrator numbers it after commit. Every helper here must run inside the caller's
`transaction.atomic()`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from accounts.models import Account, Organisation, User
from certificates import errors, storage
from certificates.models import (
    Bundle,
    CertificateExport,
    DeviceUnitCounter,
    IssuanceRequest,
    Transfer,
    TransferPolicy,
)


def bundles_lock(bundle_ids: Iterable[int]) -> dict[int, Bundle]:
    """Lock bundles FOR UPDATE in primary-key order; every id must exist."""
    ids = sorted(set(bundle_ids))
    found = storage.bundles_lock_rows(ids)
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise errors.BundleNotFound(bundle_ids=missing)
    return found


def bundles_lock_held(bundle_ids: Iterable[int], actor: User | str) -> dict[int, storage.Held]:
    """Lock bundles (pk order) for moving them out, with whether the actor may; every id must
    exist (one statement: `storage.bundles_lock_for_move`)."""
    user_id = None if isinstance(actor, str) else actor.pk
    held = storage.bundles_lock_for_move(list(bundle_ids), user_id)
    missing = sorted(set(bundle_ids) - set(held))
    if missing:
        raise errors.BundleNotFound(bundle_ids=missing)
    return held


def bundles_lock_due_for_expiry(today: dt.date, limit: int) -> list[int]:
    """Lock up to `limit` active bundles due to expire, pk order, skipping locked ones.

    A bundle locked by a transfer in flight is skipped (SKIP LOCKED) and expires on the
    next run.
    """
    due = Bundle.objects.filter(
        status=Bundle.Status.ACTIVE, expires_on__isnull=False, expires_on__lte=today
    )
    return list(
        due.select_for_update(skip_locked=True).order_by("pk").values_list("pk", flat=True)[:limit]
    )


def account_lock_receiving(
    account_id: int | None = None, number: str | None = None
) -> tuple[Account, bool]:
    """The open receiving account (by id or public number), locked FOR KEY SHARE, and
    whether its organisation's policy asks for acceptance."""
    found = storage.account_lock_for_receiving(account_id=account_id, number=number)
    if found is None:
        raise errors.AccountNotFoundForTransfer(account_id=account_id, account_number=number)
    return _receiving(*found)


def _receiving(account: Account, policy: bool) -> tuple[Account, bool]:
    """The account and policy, if the account may receive: open, and a trading account."""
    if not account.is_open:
        raise errors.AccountClosed(account_id=account.pk)
    if account.kind != Account.Kind.TRADING:
        raise errors.AccountRefusesTransfers(account_id=account.pk, kind=account.kind)
    return account, policy


def accounts_lock_receiving(numbers: Sequence[str]) -> list[tuple[Account, bool]]:
    """`account_lock_receiving` for several accounts by number, in one statement (id
    order): each open receiving account and its policy, in the order of `numbers`."""
    found = storage.accounts_lock_for_receiving(sorted(set(numbers)))
    out = []
    for number in numbers:
        if number not in found:
            raise errors.AccountNotFoundForTransfer(account_id=None, account_number=number)
        out.append(_receiving(*found[number]))
    return out


def unit_counter_lock(device_id: int) -> DeviceUnitCounter:
    """The device's unit counter, FOR UPDATE (created on first use): the issuance lock."""
    counter = DeviceUnitCounter.objects.select_for_update().filter(device_id=device_id).first()
    if counter is None:
        DeviceUnitCounter.objects.bulk_create(
            [DeviceUnitCounter(device_id=device_id)], ignore_conflicts=True
        )
        counter = DeviceUnitCounter.objects.select_for_update().get(device_id=device_id)
    return counter


def issuance_request_lock(request_id: int) -> IssuanceRequest | None:
    """The issuance request FOR UPDATE, or None."""
    return IssuanceRequest.objects.select_for_update().filter(pk=request_id).first()


def transfer_lock(transfer_id: int) -> Transfer:
    """The transfer FOR UPDATE, with both accounts' organisations; take its bundle first."""
    return (
        Transfer.objects.select_for_update()
        .select_related("from_account__organisation", "to_account__organisation")
        .get(pk=transfer_id)
    )


def export_lock(export_id: int) -> CertificateExport:
    """The export FOR UPDATE; take its bundle first."""
    return CertificateExport.objects.select_for_update().get(pk=export_id)


def transfer_policy_lock(organisation: Organisation) -> TransferPolicy:
    """The organisation's transfer policy FOR UPDATE (created on first use)."""
    policy, _created = TransferPolicy.objects.select_for_update().get_or_create(
        organisation=organisation
    )
    return policy
