"""Row locks of the contracts app, after the lower apps' rows (docs/architecture.md).

Activation and amendment lock what the overlap rule reads, in the global order: the
source account (accounts), then the device (assets), then the contract itself. An
execution claims its (contract, trigger) row first: that unique key, like an idempotency
key, only ever waits for a concurrent execution of the same trigger, which then finds
the row and skips; it holds no row another writer locks.
"""

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from assets.models import Device
from contracts.errors import ContractNotFound
from contracts.models import Contract, ContractExecution, SettlementObligation, StorageState


def contract_lock(contract_id: int) -> Contract:
    contract = Contract.objects.select_for_update().filter(pk=contract_id).first()
    if contract is None:
        raise ContractNotFound(contract_id=contract_id)
    return contract


def claim_targets_lock(*, source_account_id: int | None, device_id: int | None) -> None:
    """Serialise overlap checks on one source account and one device."""
    if source_account_id is not None:
        list(
            Account.objects.select_for_update(no_key=True).filter(pk=source_account_id).values("pk")
        )
    if device_id is not None:
        list(Device.objects.select_for_update(no_key=True).filter(pk=device_id).values("pk"))


def source_accounts_lock(account_ids: list[int]) -> None:
    """Source accounts FOR NO KEY UPDATE, in primary-key order, in one statement (what a
    single execution takes first; written out: compiling the ORM's query cost more than
    its round trip)."""
    if not account_ids:
        return
    lock = " FOR NO KEY UPDATE" if connection.vendor == "postgresql" else ""
    marks = ", ".join(["%s"] * len(account_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM accounts_account WHERE id IN ({marks}) ORDER BY id{lock}",  # noqa: S608
            list(account_ids),
        )


def execution_claims(contracts: list[Contract], trigger: str, now) -> dict[int, ContractExecution]:
    """Claim (contract, trigger) for each contract in one INSERT ... ON CONFLICT DO NOTHING,
    rows in contract order: the claims made now, by contract id. A trigger executed before
    is left out; one a concurrent transaction is claiming waits for it (then is left out
    if it committed), exactly as one `ContractExecution` insert per contract would."""
    if not contracts:
        return {}
    ops = connection.ops
    at = ops.adapt_datetimefield_value(now)
    failed = ContractExecution.Status.FAILED.value
    rows = [
        [c.pk, trigger, c.version, failed, "", "", "{}", 1, at, at]
        for c in sorted(contracts, key=lambda c: c.pk)
    ]
    marks = ", ".join(["(" + ", ".join(["%s"] * 10) + ")"] * len(rows))
    sql = (
        "INSERT INTO contracts_contractexecution (contract_id, trigger, version, status, "  # noqa: S608
        "reason_code, reason_detail, result, attempts, created_at, updated_at) "
        f"VALUES {marks} ON CONFLICT (contract_id, trigger) DO NOTHING "
        "RETURNING id, contract_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row])
        claimed = dict((contract_id, pk) for pk, contract_id in cursor.fetchall())
    out = {}
    for contract in contracts:
        if contract.pk in claimed:
            execution = ContractExecution(
                pk=claimed[contract.pk],
                contract=contract,
                trigger=trigger,
                version=contract.version,
                status=failed,
                created_at=now,
                updated_at=now,
            )
            execution._state.adding = False
            execution._state.db = connection.alias
            out[contract.pk] = execution
    return out


def execution_lock(execution_id: int) -> ContractExecution | None:
    return ContractExecution.objects.select_for_update().filter(pk=execution_id).first()


def obligation_lock(obligation_id: int) -> SettlementObligation | None:
    """An obligation being settled; its payment then locks the market's settlement
    accounts (after this row, never before)."""
    return SettlementObligation.objects.select_for_update().filter(pk=obligation_id).first()


def storage_state_lock(*, device_id: int, capacity_wh: int) -> StorageState:
    """A battery's state of charge row, FOR UPDATE (created empty on first use): taken by a
    storage execution before it plans, so two executions of one battery queue."""
    state = StorageState.objects.select_for_update().filter(device_id=device_id).first()
    if state is None:
        with transaction.atomic():
            StorageState.objects.bulk_create(
                [
                    StorageState(
                        device_id=device_id, capacity_wh=capacity_wh, updated_at=timezone.now()
                    )
                ],
                ignore_conflicts=True,
            )
        state = StorageState.objects.select_for_update().get(device_id=device_id)
    return state
