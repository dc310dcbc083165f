"""Reads of the contracts app: what a user may see, and what a trigger concerns."""

from django.db.models import Q, QuerySet

from accounts.models import Account, User
from accounts.permissions import user_organisation_ids, user_reads_everything
from certificates.models import Issuance
from contracts.kinds import KINDS
from contracts.kinds.shares import SHARE_KINDS
from contracts.models import (
    Contract,
    ContractExecution,
    OrganisationKey,
    SettlementObligation,
    StorageState,
)


def contract_list(*, user: User) -> QuerySet[Contract]:
    """Contracts the user's organisations are party to (all for issuing body and auditors)."""
    rows = Contract.objects.prefetch_related("parties", "agreements").order_by("pk")
    if user_reads_everything(user):
        return rows
    return rows.filter(parties__organisation_id__in=user_organisation_ids(user)).distinct()


def execution_list(*, user: User, contract_id: int) -> QuerySet[ContractExecution]:
    """Executions of one contract the user may see, newest first."""
    visible = contract_list(user=user).filter(pk=contract_id)
    return (
        ContractExecution.objects.filter(contract__in=visible)
        .select_related("obligation")
        .order_by("-pk")
    )


def obligation_list(
    *, user: User, contract_id: int | None = None
) -> QuerySet[SettlementObligation]:
    """Obligations of the contracts the user sees (of one contract when given)."""
    visible = contract_list(user=user)
    if contract_id is not None:
        visible = visible.filter(pk=contract_id)
    return SettlementObligation.objects.filter(contract__in=visible).order_by("pk")


def organisation_key_list(*, user: User) -> QuerySet[OrganisationKey]:
    """Keys of the user's organisations (all for issuing body and auditors)."""
    rows = OrganisationKey.objects.order_by("pk")
    if user_reads_everything(user):
        return rows
    return rows.filter(organisation_id__in=user_organisation_ids(user))


def contracts_for_issuance(*, issuance_id: int) -> list[int]:
    """Active share contracts taking from an account that this issuance credited."""
    device_id = Issuance.objects.filter(pk=issuance_id).values_list("device_id", flat=True).first()
    if device_id is None:
        return []
    accounts = Account.objects.filter(
        bundles__issuance_id=issuance_id, bundles__parent__isnull=True
    ).values("pk")
    return list(
        Contract.objects.filter(
            kind__in=SHARE_KINDS, status=Contract.Status.ACTIVE, source_account_id__in=accounts
        )
        .filter(Q(device__isnull=True) | Q(device_id=device_id))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def contracts_for_month() -> list[int]:
    """Active monthly contracts (standing retirements), in order."""
    monthly = [name for name, kind in KINDS.items() if kind.trigger == "monthly"]
    return list(
        Contract.objects.filter(kind__in=monthly, status=Contract.Status.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def executions_to_retry(*, limit: int = 500) -> list[int]:
    """Failed executions of active contracts whose policy is to retry."""
    return list(
        ContractExecution.objects.filter(
            status=ContractExecution.Status.FAILED,
            contract__status=Contract.Status.ACTIVE,
            contract__on_failure=Contract.OnFailure.RETRY,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def contracts_for_day() -> list[int]:
    """Active daily contracts (storage balancing), in order."""
    daily = [name for name, kind in KINDS.items() if kind.trigger == "daily"]
    return list(
        Contract.objects.filter(kind__in=daily, status=Contract.Status.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def organisation_storage_charge(
    *, organisation_id: int, grid_area_id: int | None = None
) -> int | None:
    """The Wh the organisation's batteries can deliver under storage balancing (None when
    none of its storage devices has a state of charge); the market's trading agents read it
    through the `market.battery_charge_lookups` hook."""
    states = StorageState.objects.filter(device__organisation_id=organisation_id)
    if grid_area_id is not None:
        states = states.filter(device__grid_area_id=grid_area_id)
    charges = list(states.values_list("soc_wh", flat=True))
    return sum(charges) if charges else None


def contracts_for_community() -> list[int]:
    """Active community sharing contracts, in order."""
    sharing = [name for name, kind in KINDS.items() if kind.trigger == "community"]
    return list(
        Contract.objects.filter(kind__in=sharing, status=Contract.Status.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def community_sharing_halted(*, contract_id: int) -> bool:
    """True when the contract's latest period is parked for a changed membership or key."""
    latest = (
        ContractExecution.objects.filter(contract_id=contract_id)
        .order_by("-trigger")
        .values_list("status", "reason_code")
        .first()
    )
    halting = ("membership_changed", "allocation_key_changed")
    return (
        latest is not None and latest[0] == ContractExecution.Status.PARKED and latest[1] in halting
    )


def communities_under_contract() -> list[int]:
    """Communities an active community sharing contract distributes (the consumers app's
    periodic distribution leaves them to it: its `consumers.distribution_owners` hook)."""
    sharing = [name for name, kind in KINDS.items() if kind.trigger == "community"]
    terms = Contract.objects.filter(kind__in=sharing, status=Contract.Status.ACTIVE).values_list(
        "terms", flat=True
    )
    return sorted({t["community_id"] for t in terms})
