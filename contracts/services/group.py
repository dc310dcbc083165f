"""Executions of every share contract one issuance triggers, as one unit (one transaction).

What `contract_execute` does per contract, for the group the `certificates.issued` hook
hands over, sharing what the group has in common (benchmarks/README.md, "Contracts"):

1. the issuance and the contracts are read once; each contract in force claims its
   (contract, trigger) row in its own savepoint, in contract order: a trigger executed
   before (or being executed by a concurrent transaction, which wins) is skipped exactly
   as `contract_execute` skips it;
2. the source accounts, in primary-key order, FOR NO KEY UPDATE (what a single execution
   takes first): a concurrent group or execution on the same output queues here;
3. per source account, the issuance's original bundles (`issued_into`) and the share
   group (`share_group`) once: facts of the issuance that the executions do not change;
4. per contract, in contract order, in a savepoint: its plan (reading the live bundles,
   so each contract plans on what the previous ones left, as before) and its transfers
   through the certificates service. A refusal (a closed account, units gone, an index
   price missing) rolls back that savepoint only and records the execution failed or
   parked with its reason and its `contract.execution_failed` event; the others apply;
5. the payments last: every PPA obligation is created, then the market's settlement
   accounts of all of them are locked at once in pk order (the
   `contracts.settlement_locks` hook), then each is offered to the settlement handlers
   (its own savepoint, as before), and each execution's `contract.executed` event follows
   its payment, with the same data as a single execution's.

Savepoints rather than a pre-check: a plan can only know that a transfer will be refused
by doing what the certificates service does (lock, check the receiving account), so the
service is asked and its refusal undone, as in the single path.

Lock order: claims (unique keys only), source accounts (pk order), bundles and receiving
accounts (the certificates service, per contract), then every settlement account at once
(pk order) and nothing after them: two groups take their common rows in the same order.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from certificates.models import Issuance
from contracts import selectors
from contracts.kinds import shares
from contracts.models import Contract, ContractExecution, SettlementObligation
from contracts.services.execution import _apply, _in_force, _settled, obligation_new, record
from contracts.services.obligations import SETTLEMENT_LOCKS, SYSTEM
from registry.errors import DomainError


@transaction.atomic
def contracts_execute_issuance(
    *, issuance_id: int, now: dt.datetime | None = None
) -> list[ContractExecution]:
    """Execute every active share contract the issuance concerns, once each, together;
    return the executions run now (applied, failed or parked), in contract order."""
    now = now or timezone.now()
    issuance = Issuance.objects.filter(pk=issuance_id).first()
    if issuance is None:
        return []
    ids = selectors.contracts_for_issuance(issuance_id=issuance_id)
    contracts = list(Contract.objects.filter(pk__in=ids).order_by("pk"))
    trigger = f"issuance:{issuance.pk}"
    claimed: list[tuple[Contract, ContractExecution]] = []
    for contract in contracts:
        if contract.kind not in shares.SHARE_KINDS or not _in_force(contract, issuance, now):
            continue
        try:
            with transaction.atomic():
                execution = ContractExecution.objects.create(
                    contract=contract,
                    trigger=trigger,
                    version=contract.version,
                    status=ContractExecution.Status.FAILED,
                    created_at=now,
                    updated_at=now,
                )
        except IntegrityError:
            continue
        claimed.append((contract, execution))
    if not claimed:
        return []
    _sources_lock(sorted({contract.source_account_id for contract, _ in claimed}))
    facts: dict[int, tuple[list, list]] = {}
    applied: list[tuple[Contract, ContractExecution, dict, list]] = []
    done: list[ContractExecution] = []
    for contract, execution in claimed:
        source = contract.source_account_id
        if source not in facts:
            facts[source] = (
                shares.issued_into(source, issuance.pk),
                shares.share_group(contract, issuance.device_id, issuance.issued_at),
            )
        base, group = facts[source]
        try:
            with transaction.atomic():
                plan = shares.plan_issuance(contract, issuance, base, group)
                result = _apply(contract, plan, execution, settle=False)
        except DomainError as exc:
            done.append(record(contract, execution, SYSTEM, timezone.now(), exc=exc))
            continue
        applied.append((contract, execution, result, plan))
    owed = [
        (contract, obligation_new(contract, execution, plan.obligation))
        for contract, execution, _result, plan in applied
        if plan.obligation
    ]
    if owed:
        for lock in SETTLEMENT_LOCKS:
            lock([obligation for _contract, obligation in owed])
    obligations = {obligation.execution_id: obligation for _c, obligation in owed}
    for contract, execution, result, plan in applied:
        obligation: SettlementObligation | None = obligations.get(execution.pk)
        if obligation is not None:
            result["obligation"] = _settled(obligation, plan.obligation)
        at = timezone.now()
        done.append(record(contract, execution, SYSTEM, at, result=result, changed=plan.subjects))
    return sorted(done, key=lambda execution: execution.contract_id)


def _sources_lock(account_ids: list[int]) -> None:
    """The source accounts FOR NO KEY UPDATE, in primary-key order (one statement)."""
    rows = Account.objects.select_for_update(no_key=True).filter(pk__in=account_ids)
    list(rows.order_by("pk").values_list("pk", flat=True))
