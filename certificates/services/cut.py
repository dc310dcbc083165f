"""A cut: bundles of one account, each cut into consecutive parts for several receiving
accounts at once, all or nothing, as one `certificate.cut_transferred` event.

What a run of `certificate_transfer_batch` calls does when each takes the first units of
what the previous left (the contracts of one issuance: benchmarks/README.md, "Contracts"),
with one split per bundle instead of one per receiver: the parts and the rest are children
of the bundle cut, and every receiver's part carries the same units it would have had.

Locks, as a transfer: the bundles first (pk order, one statement, with the holder's
mandate), then the receiving accounts FOR KEY SHARE (id order, one statement).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from certificates import errors, events, locks, storage
from certificates.models import Bundle, Transfer
from certificates.services.common import MAX_BATCH_ITEMS, Actor, Mandate, _lock_sources
from ledger.services import ledger_append
from registry.deferred_writes import deferred_writes


@transaction.atomic
@deferred_writes()  # the bundles' UPDATE travels with the next INSERT
def certificate_transfer_cut(
    *,
    actor: Actor,
    receivers: Sequence[tuple[str, Mandate]],
    cuts: Sequence[tuple[int, Sequence[tuple[int, int]]]],
) -> list[list[Transfer]]:
    """Cut each bundle into consecutive parts, one per (receiver index, volume) in order,
    the rest staying with the holder; return each receiver's transfers, in cut order.

    `receivers` are (account number, mandate) and every mandate names the same holder
    account: the bundles must be that account's."""
    if not cuts or not receivers:
        raise errors.InvalidVolume("A cut needs bundles and receivers.", fields={"cuts": ["empty"]})
    if sum(len(parts) for _, parts in cuts) > MAX_BATCH_ITEMS:
        raise errors.InvalidVolume(
            f"A cut holds at most {MAX_BATCH_ITEMS} parts.", fields={"cuts": ["too many"]}
        )
    holders = {mandate.holder_account_id for _, mandate in receivers}
    if len(holders) != 1:
        raise errors.InvalidVolume("One holder account per cut.", fields={"receivers": ["holder"]})
    items = []
    for bundle_id, parts in cuts:
        if not parts or any(not 0 <= i < len(receivers) for i, _ in parts):
            raise errors.InvalidVolume(fields={"cuts": [f"bundle {bundle_id}: bad parts"]})
        for _, volume in parts:
            if isinstance(volume, bool) or not isinstance(volume, int) or volume <= 0:
                raise errors.InvalidVolume(volume_wh=volume)
        items.append((bundle_id, sum(volume for _, volume in parts)))
    now = timezone.now()
    holder = Mandate(holder_account_id=holders.pop(), reference={})
    sources = _lock_sources(actor=actor, items=items, now=now, mandate=holder)
    to_accounts: list[tuple[Account, bool]] = [
        (to_account, policy and not mandate.receiver_agreed)
        for (to_account, policy), (_, mandate) in zip(
            locks.accounts_lock_receiving([number for number, _ in receivers]),
            receivers,
            strict=True,
        )
    ]
    created_by_id = None if isinstance(actor, str) else actor.pk
    whole: dict[tuple[int, int], list[int]] = defaultdict(list)
    split_ids: list[int] = []
    children: list[Bundle] = []
    records = []  # (receiver, source, part bundle, pending), in cut order
    rests: dict[int, Bundle | None] = {}
    for source, (_, parts) in zip(sources, cuts, strict=True):
        bundle, account = source.bundle, source.account
        cut_whole = len(parts) == 1 and source.volume_wh == bundle.volume_wh
        common = {
            "device_id": bundle.device_id,
            "issuance_id": bundle.issuance_id,
            "parent_id": bundle.pk,
            "period_start": bundle.period_start,
            "period_end": bundle.period_end,
            "expires_on": bundle.expires_on,
        }
        at = bundle.unit_start
        for index, volume in parts:
            to_account, policy = to_accounts[index]
            if account.pk == to_account.pk:
                raise errors.SameAccount(bundle_id=bundle.pk, account_id=account.pk)
            pending = account.organisation_id != to_account.organisation_id and policy
            account_id = account.pk if pending else to_account.pk
            status = Bundle.Status.RESERVED if pending else Bundle.Status.ACTIVE
            if cut_whole:
                whole[(account_id, status)].append(bundle.pk)
                bundle.account_id, bundle.status = account_id, status
                part = bundle
            else:
                part = Bundle(
                    **common,
                    account_id=account_id,
                    unit_start=at,
                    unit_end=at + volume,
                    status=status,
                )
                children.append(part)
            records.append((index, source, part, pending))
            at += volume
        rests[bundle.pk] = None
        if not cut_whole:
            if at < bundle.unit_end:
                rest = Bundle(
                    **common,
                    account_id=account.pk,
                    unit_start=at,
                    unit_end=bundle.unit_end,
                    status=Bundle.Status.ACTIVE,
                )
                children.append(rest)
                rests[bundle.pk] = rest
            bundle.status = Bundle.Status.SPLIT
            split_ids.append(bundle.pk)
    for (account_id, status), ids in whole.items():
        storage.bundles_update(ids, status=status, account_id=account_id)
    if split_ids:
        storage.bundles_update(split_ids, status=Bundle.Status.SPLIT)
        storage.bundles_insert(children)
    # Each receiver's transfers together: a contract's are consecutive ids.
    records.sort(key=lambda record: record[0])
    transfers = [
        Transfer(  # by ids: a model instance per foreign key costs more than the INSERT
            bundle_id=part.pk,
            source_id=source.bundle.pk,
            from_account_id=source.account.pk,
            to_account_id=to_accounts[index][0].pk,
            volume_wh=part.unit_end - part.unit_start,
            status=Transfer.Status.PENDING if pending else Transfer.Status.COMPLETED,
            created_by_id=created_by_id,
            created_at=now,
        )
        for index, source, part, pending in records
    ]
    storage.transfers_insert(transfers)
    out: list[list[Transfer]] = [[] for _ in receivers]
    parts_of: dict[int, list[dict]] = defaultdict(list)
    for (index, source, part, _pending), transfer in zip(records, transfers, strict=True):
        out[index].append(transfer)
        parts_of[source.bundle.pk].append(
            {
                "receiver": index,
                "transfer_id": transfer.pk,
                "status": transfer.status,
                "moved_bundle_id": part.pk,
                "unit_start": part.unit_start,
                "unit_end": part.unit_end,
                "volume_wh": transfer.volume_wh,
            }
        )
    cut_data = []
    subjects: list = []
    for source in sources:
        bundle = source.bundle
        rest = rests[bundle.pk]
        parts = sorted(parts_of[bundle.pk], key=lambda part: part["unit_start"])
        cut_data.append(
            {
                "bundle_id": bundle.pk,
                "device_id": bundle.device_id,
                "from_account_id": source.account.pk,
                "unit_start": bundle.unit_start,
                "unit_end": bundle.unit_end,
                "parts": parts,
                "rest_bundle_id": None if rest is None else rest.pk,
            }
        )
        subjects.append(bundle)
    subjects += children + transfers
    subjects += list({s.account.pk: s.account for s in sources}.values())
    subjects += list({a.pk: a for a, _ in to_accounts}.values())
    ledger_append(
        kind=events.CUT_TRANSFERRED,
        actor=actor,
        subject=subjects,
        data={
            "receivers": [
                {"to_account_id": to_account.pk, "mandate": mandate.reference}
                for (to_account, _), (_, mandate) in zip(to_accounts, receivers, strict=True)
            ],
            "cuts": cut_data,
        },
        at=now,
    )
    return out
