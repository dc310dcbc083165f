"""Row locks of the contracts app, after the lower apps' rows (docs/architecture.md).

Activation and amendment lock what the overlap rule reads, in the global order: the
source account (accounts), then the device (assets), then the contract itself. An
execution claims its (contract, trigger) row first: that unique key, like an idempotency
key, only ever waits for a concurrent execution of the same trigger, which then finds
the row and skips; it holds no row another writer locks.
"""

from django.db import transaction
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
