"""Executions of every share contract one issuance triggers, as one unit (one transaction).

What `contract_execute` does per contract, for the group the `certificates.issued` hook
hands over, sharing what the group has in common (benchmarks/README.md, "Contracts"):

1. the issuance, the contracts and their parties are read once; every contract in force
   claims its (contract, trigger) row in one INSERT ... ON CONFLICT DO NOTHING, in
   contract order (`locks.execution_claims`): a trigger executed before (or being
   executed by a concurrent transaction, which wins) is skipped exactly as
   `contract_execute` skips it;
2. the source accounts, in primary-key order, FOR NO KEY UPDATE (what a single execution
   takes first): a concurrent group or execution on the same output queues here;
3. per source account, the issuance's original bundles (`issued_into`) and the share
   group (`share_group`) once: facts of the issuance that the executions do not change;
4. per contract, in contract order, in a savepoint: its plan (reading the live bundles,
   so each contract plans on what the previous ones left, as before) and its transfers
   through the certificates service. A refusal (a closed account, units gone, an index
   price missing) rolls back that savepoint only and records the execution failed or
   parked with its reason and its `contract.execution_failed` event; the others apply;
5. the payments last: the PPAs' obligations inserted in one statement, the market's
   settlement accounts of all of them locked at once in pk order (the
   `contracts.settlement_locks` hook), each offered to the settlement handlers (its own
   payment, journal entry and savepoint, as before), their outcome written in one
   statement; then the executions' outcomes in one statement and one `contract.executed`
   event per contract (one INSERT for all), with the data a single execution records.

Savepoints rather than a pre-check: a plan can only know that a transfer will be refused
by doing what the certificates service does (lock, check the receiving account), so the
service is asked and its refusal undone, as in the single path.

Lock order: claims (unique keys only), source accounts (pk order), bundles and receiving
accounts (the certificates service, per contract), then every settlement account at once
(pk order) and nothing after them: two groups take their common rows in the same order.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from certificates.models import Issuance
from contracts import events, locks, selectors
from contracts.kinds import shares
from contracts.kinds.base import Plan
from contracts.models import Contract, ContractExecution, ContractParty, SettlementObligation
from contracts.services.execution import (
    OUTCOME_FIELDS,
    _apply,
    _in_force,
    obligation_build,
    obligation_result,
    outcome_event,
    outcome_set,
    record,
)
from contracts.services.obligations import OFFER_FIELDS, SETTLEMENT_LOCKS, SYSTEM, obligation_offer
from ledger.services import ledger_append_many
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
    in_force = [
        contract
        for contract in contracts
        if contract.kind in shares.SHARE_KINDS and _in_force(contract, issuance, now)
    ]
    claims = locks.execution_claims(in_force, trigger, now)
    claimed = [(c, claims[c.pk]) for c in in_force if c.pk in claims]
    if not claimed:
        return []
    _sources_lock(sorted({contract.source_account_id for contract, _ in claimed}))
    parties: dict[int, dict[str, int]] = defaultdict(dict)
    party_rows = ContractParty.objects.filter(contract_id__in=[c.pk for c, _ in claimed])
    for contract_id, role, organisation_id in party_rows.values_list(
        "contract_id", "role", "organisation_id"
    ):
        parties[contract_id][role] = organisation_id
    facts: dict[int, tuple[list, list]] = {}
    applied: list[tuple[Contract, ContractExecution, dict, Plan]] = []
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
            roles = parties[contract.pk]
            at = timezone.now()
            done.append(
                record(contract, execution, SYSTEM, at, exc=exc, parties=roles, obligation=None)
            )
            continue
        applied.append((contract, execution, result, plan))
    obligations = _settle(applied, parties)
    outcomes = []
    at = timezone.now()
    for contract, execution, result, plan in applied:
        outcome_set(contract, execution, at, result=result)
        obligation = obligations.get(execution.pk)
        outcomes.append(
            outcome_event(contract, execution, plan.subjects, parties[contract.pk], obligation)
        )
        done.append(execution)
    if applied:
        ContractExecution.objects.bulk_update([a[1] for a in applied], OUTCOME_FIELDS)
        ledger_append_many(kind=events.EXECUTED, actor=SYSTEM, events=outcomes)
    return sorted(done, key=lambda execution: execution.contract_id)


def _sources_lock(account_ids: list[int]) -> None:
    """The source accounts FOR NO KEY UPDATE, in primary-key order (one statement)."""
    rows = Account.objects.select_for_update(no_key=True).filter(pk__in=account_ids)
    list(rows.order_by("pk").values_list("pk", flat=True))


def _settle(
    applied: list[tuple], parties: dict[int, dict[str, int]]
) -> dict[int, SettlementObligation]:
    """The group's obligations: inserted in one statement, every settlement account their
    payments lock locked at once (`SETTLEMENT_LOCKS`), each offered to the settlement
    handlers in contract order (a payment each, its own savepoint, as before), their
    outcome written in one statement; each execution's result says what became of it.
    Returns the obligations by execution id."""
    owed = [
        (execution, result, plan.obligation)
        for _contract, execution, result, plan in applied
        if plan.obligation
    ]
    if not owed:
        return {}
    obligations = SettlementObligation.objects.bulk_create(
        [
            obligation_build(execution.contract, execution, due, parties[execution.contract_id])
            for execution, _result, due in owed
        ]
    )
    for lock in SETTLEMENT_LOCKS:
        lock(obligations)
    for (_execution, result, due), obligation in zip(owed, obligations, strict=True):
        obligation_offer(obligation)
        result["obligation"] = obligation_result(obligation, due)
    SettlementObligation.objects.bulk_update(obligations, OFFER_FIELDS)
    return {obligation.execution_id: obligation for obligation in obligations}
