"""Reads of the contracts app: what a user may see, and what a trigger concerns."""

from collections import defaultdict

from django.db import connection
from django.db.models import Case, QuerySet, When

from accounts.models import User
from accounts.permissions import user_organisation_ids, user_reads_everything
from assets.models import Reading
from certificates.models import Issuance
from contracts.kinds import KINDS, storage
from contracts.kinds.shares import SHARE_KINDS
from contracts.models import (
    Contract,
    ContractExecution,
    OrganisationKey,
    SettlementObligation,
    StorageState,
)
from registry.joined_rows import JoinedSelect, part


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


def share_contracts_in_force(*, issuance: Issuance) -> list[Contract]:
    """Share contracts in force when the issuance was made, taking from an account it
    credited (for its device or for any device), in primary-key order: the active ones are
    what the issuance executes, and those of one source account are that account's share
    group (`shares.share_group`), so a group of executions reads both here at once.

    One statement, bounded by what it returns: the issuance's accounts (by the issuance
    index, evaluated once) select contracts by the source account index. PostgreSQL
    turned `IN (subquery)` into a loop over every contract without a device (standing
    orders), probing each one's bundles; `= ANY(ARRAY(subquery))` is computed first."""
    accounts = (
        "SELECT b.account_id FROM certificates_bundle b"
        " WHERE b.issuance_id = %s AND b.parent_id IS NULL"
    )
    if connection.vendor == "postgresql":
        by_account = f"c.source_account_id = ANY(ARRAY({accounts}))"
    else:
        by_account = f"c.source_account_id IN ({accounts})"
    kinds = ", ".join(["%s"] * len(SHARE_KINDS))
    moment = connection.ops.adapt_datetimefield_value(issuance.issued_at)  # as the ORM binds it
    return list(
        Contract.objects.raw(
            f"SELECT c.* FROM contracts_contract c WHERE {by_account} AND c.kind IN ({kinds})"  # noqa: S608
            " AND (c.device_id IS NULL OR c.device_id = %s)"
            " AND c.activated_at <= %s AND (c.ended_at IS NULL OR c.ended_at > %s)"
            " ORDER BY c.id",
            [issuance.pk, *SHARE_KINDS, issuance.device_id, moment, moment],
        )
    )


_ISSUANCE = JoinedSelect(part(Issuance, "i"))


def issuance_by_id(issuance_id: int) -> Issuance | None:
    """One issuance (hand-written: read once per group of executions)."""
    found = _ISSUANCE.one("FROM certificates_issuance i WHERE i.id = %s", [issuance_id])
    return None if found is None else found[0]


def parties_by_role(contract_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each contract's party organisations by role, in one statement."""
    parties: dict[int, dict[str, int]] = defaultdict(dict)
    if not contract_ids:
        return parties
    marks = ", ".join(["%s"] * len(contract_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT contract_id, role, organisation_id FROM contracts_contractparty"  # noqa: S608
            f" WHERE contract_id IN ({marks})",
            list(contract_ids),
        )
        for contract_id, role, organisation_id in cursor.fetchall():
            parties[contract_id][role] = organisation_id
    return parties


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
    """The Wh the organisation's batteries can deliver now (None when none of its storage
    devices has a storage balancing state); the market's trading agents read it through the
    `market.battery_charge_lookups` hook. Each battery's is `storage_intraday_charge`."""
    states = StorageState.objects.filter(device__organisation_id=organisation_id)
    if grid_area_id is not None:
        states = states.filter(device__grid_area_id=grid_area_id)
    states = list(states.order_by("device_id"))
    if not states:
        return None
    return sum(storage_intraday_charge(state=state) for state in states)


def storage_intraday_charge(*, state: StorageState) -> int:
    """A battery's state of charge now, within the day its contract has not run yet.

    The contract moves `soc_wh` once a day is over (contracts.kinds.storage); until then
    this adds what the battery's accepted readings since `through` (the end of the last
    day run; the device's storage contract's first day when none has run) say: each charge
    reading (`consumption` meters) stores `wh * efficiency_ppm // 1_000_000` (the round-trip
    efficiency of its storage balancing contract, losses taken at charge as the day's plan
    takes them), each discharge reading (`storage` meters) takes its Wh. Applied in reading
    order, the charge never goes below 0 nor above the state's capacity (where the day's
    plan would refuse, an estimate stops at the bound). A reading not wholly after
    `through` is the executed day's and is not counted.
    """
    contract = (
        Contract.objects.filter(device_id=state.device_id, kind=storage.STORAGE_BALANCING)
        .exclude(status=Contract.Status.DRAFT)
        .order_by(Case(When(status=Contract.Status.ACTIVE, then=0), default=1), "-pk")
        .first()
    )
    since = state.through
    if since is None and contract is not None:
        since = storage.next_day_start(contract, None)
    soc = state.soc_wh
    if since is None:
        return soc
    ppm = contract.terms["efficiency_ppm"] if contract is not None else storage.PPM
    rows = (
        Reading.objects.filter(
            device_id=state.device_id,
            meter__kind__in=(*storage.CHARGE_METERS, *storage.DISCHARGE_METERS),
            start__gte=since,
        )
        .order_by("start", "meter_id")
        .values_list("meter__kind", "wh")
    )
    for kind, wh in rows:
        if kind in storage.CHARGE_METERS:
            soc = min(state.capacity_wh, soc + wh * ppm // storage.PPM)
        else:
            soc = max(0, soc - wh)
    return soc


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
