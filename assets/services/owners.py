"""A device's co-owners: organisations, receiving accounts and shares summing to exactly 1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from django.db import transaction

from accounts.models import Account, Organisation, User
from assets import errors, locks
from assets.models import (
    Device,
    DeviceOwner,
)
from assets.services.common import (
    _is_int,
    _require_operator,
)
from assets.validation import (
    parse_share,
)
from ledger.services import ledger_append

MAX_OWNERS = 1000


@dataclass(frozen=True)
class OwnerShare:
    """A validated co-owner: organisation, receiving account and share."""

    organisation: Organisation
    account: Account
    share: Fraction


def _owner_shares(owners: Sequence[Mapping[str, Any]]) -> list[OwnerShare]:
    """Check co-owners; every problem is reported per owner (extra.fields.owners)."""
    if not owners:
        raise errors.SharesInvalid("A device needs at least one owner.", fields={"owners": []})
    if len(owners) > MAX_OWNERS:
        raise errors.SharesInvalid(f"At most {MAX_OWNERS} co-owners.")
    organisation_ids = [owner.get("organisation_id") for owner in owners]
    account_ids = [owner.get("account_id") for owner in owners]
    organisations = Organisation.objects.in_bulk([i for i in organisation_ids if _is_int(i)])
    accounts = Account.objects.in_bulk([i for i in account_ids if _is_int(i)])
    problems: dict[str, dict[str, list[str]]] = {}
    result: list[OwnerShare] = []
    seen: set[int] = set()
    for position, owner in enumerate(owners):
        here: dict[str, list[str]] = {}
        organisation = organisations.get(owner.get("organisation_id"))
        account = accounts.get(owner.get("account_id"))
        if organisation is None:
            here["organisation"] = ["No such organisation."]
        elif organisation.status != Organisation.Status.APPROVED:
            here["organisation"] = ["The organisation is not approved."]
        elif organisation.pk in seen:
            here["organisation"] = ["Listed twice; give each co-owner once with its whole share."]
        if account is None:
            here["account"] = ["No such account."]
        elif organisation is not None and account.organisation_id != organisation.pk:
            here["account"] = ["The account does not belong to this organisation."]
        elif not account.is_open:
            here["account"] = ["The account is closed."]
        elif account.kind == Account.Kind.RETIREMENT:
            here["account"] = [
                "A retirement account receives no new certificates: "
                "name a trading or issuance account."
            ]
        try:
            share = parse_share(owner.get("share"))
        except ValueError as exc:
            here["share"] = [str(exc)]
            share = None
        if here:
            problems[str(position)] = here
            continue
        seen.add(organisation.pk)
        result.append(OwnerShare(organisation=organisation, account=account, share=share))
    if problems:
        first = next(iter(problems.values()))
        name, messages = next(iter(first.items()))
        raise errors.OwnerInvalid(f"Co-owner: {name}: {messages[0]}", fields={"owners": problems})
    total = sum((owner.share for owner in result), Fraction(0))
    if total != 1:
        raise errors.SharesInvalid(
            f"Co-owner shares sum to {total}, not exactly 1.",
            fields={"owners": {"sum": [f"{total.numerator}/{total.denominator}"]}},
        )
    return result


def _owners_store(device: Device, owners: list[OwnerShare]) -> list[dict[str, Any]]:
    DeviceOwner.objects.filter(device=device).delete()
    DeviceOwner.objects.bulk_create(
        [
            DeviceOwner(
                device=device,
                organisation=owner.organisation,
                account=owner.account,
                share_numerator=owner.share.numerator,
                share_denominator=owner.share.denominator,
            )
            for owner in owners
        ]
    )
    return [
        {
            "organisation_id": owner.organisation.pk,
            "account_id": owner.account.pk,
            "share": owner.share,
        }
        for owner in owners
    ]


@transaction.atomic
def device_owners_set(
    *, actor: User, device_id: int, owners: Sequence[Mapping[str, Any]]
) -> list[DeviceOwner]:
    """Replace a device's co-owners; the new shares must sum to exactly 1."""
    device = locks.device_lock(device_id)
    _require_operator(actor, device)
    if device.status == Device.Status.DECOMMISSIONED:
        raise errors.DeviceStatusConflict(status=device.status)
    shares = _owner_shares(owners)
    owner_data = _owners_store(device, shares)
    ledger_append(
        kind="device.owners_set",
        actor=actor,
        subject=device,
        data={"device_id": device.pk, "owners": owner_data},
    )
    return list(device.owners.select_related("organisation", "account"))
