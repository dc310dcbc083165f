"""Executions of every share contract one issuance triggers, as one unit (one transaction).

What `contract_execute` does per contract, for the group the `certificates.issued` hook
hands over, sharing what the group has in common (benchmarks/README.md, "Contracts"):

1. the issuance, the share contracts in force for it (`share_contracts_in_force`: the
   active ones execute, and each source account's are its share group) and their parties
   are read once; every active contract in force claims its (contract, trigger) row in
   one INSERT ... ON CONFLICT DO NOTHING, in contract order (`locks.execution_claims`):
   a trigger executed before (or being executed by a concurrent transaction, which
   wins) is skipped exactly as `contract_execute` skips it;
2. the source accounts, in primary-key order, FOR NO KEY UPDATE (what a single execution
   takes first): a concurrent group or execution on the same output queues here;
3. per source account, the issuance's original bundles (`issued_into`) and the share
   group (`share_group_among` the contracts read in 1) once: facts of the issuance that
   the executions do not change;
4. per source account, the live bundles once (with the original ones, one statement:
   `issued_and_live`), and each contract's plan in contract order
   on what the previous ones take of them (the same units as one execution at a time); a
   plan that refuses (units short, an index price missing) records the execution failed
   or parked with its reason and its `contract.execution_failed` event and takes nothing;
   then every planned transfer in one cut (`certificate_transfer_cut`, in a savepoint):
   each bundle split once into consecutive parts, one per receiver, and the rest, one
   `certificate.cut_transferred` event naming each execution's mandate. If the cut is
   refused (a closed receiving account), the savepoint is rolled back and each contract
   runs on its own as before (a savepoint each, its plan on the same original bundles
   and share group, its transfer batch), so that the refusal stays with its contract and
   the others apply;
5. the payments last: the PPAs' obligations inserted in one statement, paid through the
   market's `pay_many` (its settlement accounts locked at once in pk order, each payment
   checked in memory, its own journal entry and `settlement.paid` event, all written in a
   few statements; or, with other handlers, each offered in its own savepoint after the
   `contracts.settlement_locks` hook locked them all), their outcome written in one
   statement; then the executions' outcomes in one statement and one `contract.executed`
   event per contract (one INSERT for all), with the data a single execution records.

Savepoints rather than a pre-check: a plan can only know that a transfer will be refused
by doing what the certificates service does (lock, check the receiving account), so the
service is asked and its refusal undone, as in the single path.

Lock order: claims (unique keys only), source accounts (pk order), bundles and receiving
accounts (the certificates service, per cut or per contract), then every settlement
account at once (pk order) and nothing after them: two groups take their common rows in
the same order.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from contextlib import nullcontext

from django.db import transaction
from django.utils import timezone

from certificates import services as certificates
from certificates.models import Issuance
from contracts import events, locks, selectors
from contracts.kinds import shares
from contracts.kinds.base import Plan
from contracts.models import Contract, ContractExecution, SettlementObligation
from contracts.services.execution import (
    OUTCOME_FIELDS,
    _apply,
    _in_force,
    contract_mandate,
    obligation_build,
    obligation_result,
    outcome_event,
    outcome_set,
    plan_refusal,
    record,
)
from contracts.services.obligations import OFFER_FIELDS, SYSTEM, obligations_offer
from ledger.services import ledger_append_many
from registry.deferred_writes import deferred_writes
from registry.errors import DomainError
from registry.row_updates import rows_update


@transaction.atomic
@deferred_writes()  # journal lines and balances travel with the next statement
def contracts_execute_issuance(
    *, issuance_id: int, now: dt.datetime | None = None
) -> list[ContractExecution]:
    """Execute every active share contract the issuance concerns, once each, together;
    return the executions run now (applied, failed or parked), in contract order."""
    now = now or timezone.now()
    issuance = selectors.issuance_by_id(issuance_id)
    if issuance is None:
        return []
    contracts = selectors.share_contracts_in_force(issuance=issuance)
    trigger = f"issuance:{issuance.pk}"
    in_force = [
        contract
        for contract in contracts
        if contract.status == Contract.Status.ACTIVE and _in_force(contract, issuance, now)
    ]
    claims = locks.execution_claims(in_force, trigger, now)
    claimed = [(c, claims[c.pk]) for c in in_force if c.pk in claims]
    if not claimed:
        return []
    locks.source_accounts_lock(sorted({contract.source_account_id for contract, _ in claimed}))
    parties = selectors.parties_by_role([c.pk for c, _ in claimed])
    applied: list[tuple[Contract, ContractExecution, dict, Plan]] = []
    done: list[ContractExecution] = []
    by_source: dict[int, list[tuple[Contract, ContractExecution]]] = defaultdict(list)
    for contract, execution in claimed:
        by_source[contract.source_account_id].append((contract, execution))
    for source, members in by_source.items():
        # Facts of the issuance that the executions do not change: read once.
        base, live = shares.issued_and_live(source, issuance.pk)
        group = shares.share_group_among(contracts, members[0][0])
        planned, refused = _plan_source(members, issuance, base, group, live)
        for contract, execution, exc in refused:
            done.append(_refused(contract, execution, exc, parties))
        if _cut(planned):
            applied += planned
            continue
        # The cut refused (a closed receiving account, units gone): each contract on its
        # own, as `contract_execute` would, so that the refusal stays with its contract.
        for contract, execution, _result, _plan in planned:
            try:
                with transaction.atomic():
                    plan = shares.plan_issuance(contract, issuance, base, group)
                    result = _apply(contract, plan, execution, settle=False)
            except DomainError as exc:
                done.append(_refused(contract, execution, exc, parties))
                continue
            applied.append((contract, execution, result, plan))
    applied.sort(key=lambda item: item[0].pk)
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
        # Both travel with the transaction's end (deferred_writes).
        ledger_append_many(kind=events.EXECUTED, actor=SYSTEM, events=outcomes, returning=False)
        rows_update(ContractExecution, [a[1] for a in applied], OUTCOME_FIELDS)
    return sorted(done, key=lambda execution: execution.contract_id)


def _refused(
    contract: Contract,
    execution: ContractExecution,
    exc: DomainError,
    parties: dict[int, dict[str, int]],
) -> ContractExecution:
    """Record a refused execution (failed or parked) with its one event."""
    roles = parties[contract.pk]
    return record(
        contract, execution, SYSTEM, timezone.now(), exc=exc, parties=roles, obligation=None
    )


def _plan_source(
    members: list[tuple[Contract, ContractExecution]],
    issuance: Issuance,
    base: list[tuple],
    group: list[Contract],
    live: dict,
) -> tuple[list[tuple[Contract, ContractExecution, dict, Plan]], list[tuple]]:
    """Plan the contracts on one source account, in contract order, each on what the
    previous ones take of the live bundles (`live`, taken from as they plan): the plans
    that apply, with their results so far, and the refused ones (contract, execution,
    error), which take nothing."""
    splits: dict = {}  # each period split once for the group (`shares.allocate`)
    planned, refused = [], []
    for contract, execution in members:
        plan = shares.plan_issuance(contract, issuance, base, group, live=live, splits=splits)
        refusal = plan_refusal(plan)
        if refusal is not None:
            refused.append((contract, execution, refusal))
            continue
        for _number, items in plan.transfers:
            _take(live, items)
        planned.append((contract, execution, dict(plan.summary), plan))
    return planned, refused


def _take(live: dict, items: list[tuple[int, int]]) -> None:
    """What a plan takes leaves the rest of each bundle, first units first, in `live`."""
    taken = dict(items)
    for period, bundles in live.items():
        left = []
        for pk, volume in bundles:
            volume -= taken.get(pk, 0)
            if volume:
                left.append((pk, volume))
        live[period] = left


def _cut(planned: list[tuple[Contract, ContractExecution, dict, Plan]]) -> bool:
    """Every planned transfer of one source account in one cut of its bundles (in a
    savepoint); each result gets its contract's transfer ids. False when the certificates
    service refused (nothing written)."""
    receivers: list[tuple[str, certificates.Mandate]] = []
    parts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    owner: list[dict] = []
    for contract, execution, result, plan in planned:
        mandate = contract_mandate(contract, execution, plan)
        for number, items in plan.transfers:
            for pk, volume in items:
                parts[pk].append((len(receivers), volume))
            receivers.append((number, mandate))
            owner.append(result)
    if not receivers:
        return True
    moved: list[list] = [[] for _ in receivers]
    chunks = list(_chunks(list(parts.items())))
    try:
        # One cut is undone by the service's own savepoint; more need one around them all.
        with transaction.atomic() if len(chunks) > 1 else nullcontext():
            for cuts in chunks:
                taken = certificates.certificate_transfer_cut(
                    actor=SYSTEM, receivers=receivers, cuts=cuts
                )
                for mine, transfers in zip(moved, taken, strict=True):
                    mine += transfers
    except DomainError:
        return False
    for result, transfers in zip(owner, moved, strict=True):
        if transfers:
            result["transfer_ids"] = [transfers[0].pk, transfers[-1].pk, len(transfers)]
    return True


def _chunks(cuts: list[tuple[int, list]]):
    """The cuts in runs of at most `MAX_BATCH_ITEMS` parts (a bundle is never divided)."""
    chunk: list[tuple[int, list]] = []
    size = 0
    for cut in cuts:
        if chunk and size + len(cut[1]) > certificates.MAX_BATCH_ITEMS:
            yield chunk
            chunk, size = [], 0
        chunk.append(cut)
        size += len(cut[1])
    if chunk:
        yield chunk


def _settle(
    applied: list[tuple], parties: dict[int, dict[str, int]]
) -> dict[int, SettlementObligation]:
    """The group's obligations: inserted in one statement, offered to the settlement
    handlers together in contract order (`obligations_offer`), their outcome written in
    one statement; each execution's result says what became of it.
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
    obligations_offer(obligations)
    for (_execution, result, due), obligation in zip(owed, obligations, strict=True):
        result["obligation"] = obligation_result(obligation, due)
    rows_update(SettlementObligation, obligations, OFFER_FIELDS)
    return {obligation.execution_id: obligation for obligation in obligations}
