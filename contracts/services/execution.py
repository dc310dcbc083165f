"""Executions: a contract acts on a trigger (an issuance, a month), deterministically.

One transaction per execution: the claim row (unique per contract and trigger), the
certificates services' writes under the contract's mandate, the settlement obligation
and one `contract.executed` event naming the contract, its parties and its inputs. A
refusal on the way (a closed account, units gone, a settlement handler's refusal) rolls
the writes back to a savepoint and records the execution as failed or parked with its
reason, with one `contract.execution_failed` event: never half-applied.

The certificates services append their own events (the transfer or retirement, carrying
the mandate), so an applied execution queues two or more events in one transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, User
from accounts.permissions import user_can_act_for
from certificates import services as certificates
from certificates.models import Issuance
from contracts import errors, events, locks
from contracts.kinds import KINDS, community, retirement, shares, storage
from contracts.kinds.base import Plan, month_bounds
from contracts.models import Contract, ContractExecution, SettlementObligation, StorageState
from contracts.services.obligations import SYSTEM, obligation_settle
from contracts.services.storage import storage_apply
from ledger.canonical import to_event_value
from ledger.services import ledger_append
from registry.errors import DomainError

CHUNK = certificates.MAX_BATCH_ITEMS


def _parse_trigger(contract: Contract, trigger: str) -> tuple[str, Any]:
    kind = KINDS[contract.kind]
    prefix, _, value = trigger.partition(":")
    if kind.trigger == "issuance" and prefix == "issuance" and value.isdigit():
        issuance = Issuance.objects.filter(pk=int(value)).first()
        if issuance is not None:
            return prefix, issuance
    if kind.trigger == "monthly" and prefix == "period":
        month_bounds(value)
        return prefix, value
    if kind.trigger == "daily" and prefix == "day":
        storage.day_bounds(value)
        return prefix, value
    if kind.trigger == "community":
        return "community", community.period_bounds(contract, prefix, value)
    raise errors.TriggerNotApplicable(contract_id=contract.pk, trigger=trigger)


def contract_plan(*, contract: Contract, trigger: str) -> Plan:
    """What the contract does for `trigger`, read from the database; writes nothing."""
    return _plan_parsed(contract, trigger, _parse_trigger(contract, trigger))


def _plan_parsed(contract: Contract, trigger: str, parsed: tuple[str, Any]) -> Plan:
    prefix, value = parsed
    if prefix == "issuance":
        return shares.plan_issuance(contract, value)
    if prefix == "day":
        return storage.plan_day(contract, value)
    if prefix == "community":
        return community.plan_period(contract, trigger)
    return retirement.plan_month(contract, value)


def contract_dry_run(
    *, contract_id: int, issuance_id: int | None = None, period: str | None = None
) -> dict[str, Any]:
    """What a contract would do for an issuance or a month (YYYY-MM; by default the
    current month), or for storage balancing a day (YYYY-MM-DD; by default the battery's
    next day), without writing."""
    contract = Contract.objects.filter(pk=contract_id).first()
    if contract is None:
        raise errors.ContractNotFound(contract_id=contract_id)
    if issuance_id is None and period is None and contract.kind == community.COMMUNITY_SHARING:
        period = community.next_trigger(contract).partition(":")[2]
    if issuance_id is None and period is None:
        period = (
            _storage_next_day(contract)
            if contract.kind == storage.STORAGE_BALANCING
            else timezone.now().strftime("%Y-%m")
        )
    if issuance_id is not None and period is not None:
        raise errors.InvalidTerms(
            "Give an issuance or a period, not both.", fields={"issuance": ["or period"]}
        )
    if issuance_id is not None:
        plan = contract_plan(contract=contract, trigger=f"issuance:{issuance_id}")
    elif contract.kind in shares.SHARE_KINDS:
        start, end = month_bounds(period)
        plan = shares.plan_period(contract, start, end)
    elif contract.kind == storage.STORAGE_BALANCING:
        plan = contract_plan(contract=contract, trigger=f"day:{period}")
    elif contract.kind == community.COMMUNITY_SHARING:
        prefix = community.TRIGGER_PREFIX[contract.terms["granularity"]]
        plan = contract_plan(contract=contract, trigger=f"{prefix}:{period}")
    else:
        plan = contract_plan(contract=contract, trigger=f"period:{period}")
    executed = ContractExecution.objects.filter(contract=contract, trigger=plan.trigger).first()
    out = {"trigger": plan.trigger, "would_do": to_event_value(plan.summary)}
    out["would_fail"] = to_event_value(plan.shortfall) if plan.shortfall else None
    if plan.refusal is not None:
        refusal = plan.refusal
        out["would_fail"] = {"code": refusal.code, "detail": refusal.detail} | to_event_value(
            refusal.extra
        )
    out["executed"] = None if executed is None else executed.status
    return out


def _in_force(contract: Contract, trigger_value: Any, now: dt.datetime) -> bool:
    if isinstance(trigger_value, Issuance):
        moment = trigger_value.issued_at
        return (
            contract.activated_at is not None
            and contract.activated_at <= moment
            and (contract.ended_at is None or contract.ended_at > moment)
        )
    if isinstance(trigger_value, tuple):  # a community sharing period: (start, end)
        start, end = trigger_value
        return (
            contract.status == Contract.Status.ACTIVE
            and contract.start_at <= start
            and end <= contract.end_at
            and end <= now
        )
    if isinstance(trigger_value, str) and len(trigger_value) == 10:  # a day, YYYY-MM-DD
        start, end = storage.day_bounds(trigger_value)
        return (
            contract.status == Contract.Status.ACTIVE
            and contract.start_at <= start
            and end <= contract.end_at
            and end <= now
        )
    start, end = month_bounds(trigger_value)
    return (
        contract.status == Contract.Status.ACTIVE
        and contract.start_at < end
        and contract.end_at > start
        and end <= now
    )


def plan_refusal(plan: Plan) -> DomainError | None:
    """Why a plan cannot be carried out (its own refusal, or units short), or None."""
    if plan.refusal is not None:
        return plan.refusal
    if plan.shortfall:
        return errors.ExecutionShortfall(**to_event_value(plan.shortfall))
    return None


def contract_mandate(
    contract: Contract, execution: ContractExecution, plan: Plan
) -> certificates.Mandate:
    """What lets an execution move the source account's units: the contract, the execution
    and its trigger; a PPA's buyer agreed to receive when it signed."""
    return certificates.Mandate(
        holder_account_id=contract.source_account_id,
        reference={
            "contract_id": contract.pk,
            "execution_id": execution.pk,
            "trigger": plan.trigger,
        },
        receiver_agreed=contract.kind in shares.PPA_KINDS,
    )


def _apply(
    contract: Contract, plan: Plan, execution: ContractExecution, *, settle: bool = True
) -> dict[str, Any]:
    """Carry out a plan through the certificates services; raises to refuse. Without
    `settle` the obligation is left to the caller (`_settle`: a group pays last)."""
    refusal = plan_refusal(plan)
    if refusal is not None:
        raise refusal
    if plan.community is not None:
        return community.apply(plan)
    mandate = contract_mandate(contract, execution, plan)
    if plan.storage is not None:
        state = locks.storage_state_lock(
            device_id=contract.device_id, capacity_wh=contract.terms["capacity_wh"]
        )
        return storage_apply(
            contract=contract, plan=plan, execution=execution, state=state, mandate=mandate
        )
    result: dict[str, Any] = dict(plan.summary)
    moved = []
    for to_number, items in plan.transfers:
        for i in range(0, len(items), CHUNK):
            transfers = certificates.certificate_transfer_batch(
                actor=SYSTEM,
                items=items[i : i + CHUNK],
                to_account_number=to_number,
                mandate=mandate,
            )
            moved += [t.pk for t in transfers]
    if moved:
        result["transfer_ids"] = [moved[0], moved[-1], len(moved)]
    if plan.retirements:
        terms = contract.terms
        start, end = month_bounds(plan.trigger.partition(":")[2])
        retired = []
        for i in range(0, len(plan.retirements), CHUNK):
            item = certificates.certificate_retire(
                actor=SYSTEM,
                items=plan.retirements[i : i + CHUNK],
                beneficiary_name=terms["beneficiary_name"],
                beneficiary_country=terms["beneficiary_country"],
                consumption_start=start,
                consumption_end=end,
                purpose=terms["purpose"],
                location=terms.get("location", ""),
                mandate=mandate,
            )
            retired.append(str(item.public_id))
        result["retirements"] = retired
    if plan.hourly_retirements:
        # One statement per matched hour: its consumption period is the hour it matched.
        # The hours go to the certificates service in chunks of up to CHUNK bundles, each
        # chunk a handful of statements (a call per hour was about 7.5 statements an hour:
        # benchmarks/household_retirement_bench.py).
        terms = contract.terms
        retired = []
        for chunk in _hour_chunks(plan.hourly_retirements):
            retirements = certificates.certificate_retire_periods(
                actor=SYSTEM,
                periods=[(hour, hour + retirement.HOUR, items) for hour, items in chunk],
                beneficiary_name=terms["beneficiary_name"],
                beneficiary_country=terms["beneficiary_country"],
                purpose=terms["purpose"],
                location=terms.get("location", ""),
                mandate=mandate,
            )
            retired += [str(item.public_id) for item in retirements]
        result["retirements"] = retired
    if plan.obligation and settle:
        result["obligation"] = _obligation(contract, execution, plan.obligation)
    return result


def _hour_chunks(hourly: list[tuple[dt.datetime, list[tuple[int, int]]]]):
    """The hours in order, in runs of at most CHUNK bundles (an hour is never cut)."""
    chunk: list[tuple[dt.datetime, list[tuple[int, int]]]] = []
    size = 0
    for hour, items in hourly:
        if chunk and size + len(items) > CHUNK:
            yield chunk
            chunk, size = [], 0
        chunk.append((hour, items))
        size += len(items)
    if chunk:
        yield chunk


def _obligation(contract: Contract, execution: ContractExecution, owed: dict) -> dict:
    return _settled(obligation_new(contract, execution, owed), owed)


def obligation_new(
    contract: Contract,
    execution: ContractExecution,
    owed: dict,
    roles: dict[str, int] | None = None,
) -> SettlementObligation:
    """The obligation row of an applied execution, not yet offered for payment (`roles`:
    the contract's party organisations by role, when the caller read them)."""
    obligation = obligation_build(contract, execution, owed, roles)
    obligation.save(force_insert=True)
    return obligation


def obligation_build(
    contract: Contract,
    execution: ContractExecution,
    owed: dict,
    roles: dict[str, int] | None = None,
) -> SettlementObligation:
    """`obligation_new`'s row, unsaved (a group of executions inserts all in one)."""
    if roles is None:
        roles = dict(contract.parties.values_list("role", "organisation_id"))
    return SettlementObligation(
        contract=contract,
        execution=execution,
        payer_id=roles[owed["payer_role"]],
        payee_id=roles[owed["payee_role"]],
        amount_minor=owed["amount_minor"],
        currency=owed["currency"],
        volume_wh=owed["volume_wh"],
        created_at=timezone.now(),
    )


def _settled(obligation: SettlementObligation, owed: dict) -> dict:
    """Offer the obligation for payment; what the execution's result says of it."""
    obligation_settle(obligation)
    return obligation_result(obligation, owed)


def obligation_result(obligation: SettlementObligation, owed: dict) -> dict:
    """What an execution's result says of its obligation once offered for payment."""
    return (
        owed
        | {
            "obligation_id": obligation.pk,
            "payer_id": obligation.payer_id,
            "payee_id": obligation.payee_id,
            "status": obligation.status,
        }
        | ({"reason_code": obligation.reason_code} if obligation.reason_code else {})
    )


def _run(
    contract: Contract,
    execution: ContractExecution,
    actor: Any,
    parsed: tuple[str, Any] | None = None,
) -> ContractExecution:
    """Plan and apply inside a savepoint; record the outcome and its one event. `parsed`
    is the trigger as `_parse_trigger` read it, when the caller already did."""
    now = timezone.now()
    changed: list[Any] = []
    try:
        with transaction.atomic():
            if contract.kind == storage.STORAGE_BALANCING:
                # The battery's state row before the plan reads it: a second execution
                # on the battery waits here and plans on the first one's result.
                locks.storage_state_lock(
                    device_id=contract.device_id, capacity_wh=contract.terms["capacity_wh"]
                )
            elif contract.kind in shares.SHARE_KINDS:
                # The source account before the plan reads its live bundles: executions of
                # two contracts on one output (two shapes, a PPA and a standing transfer)
                # queue here instead of splitting the same bundle at once, and the second
                # plans on what the first left.
                locks.claim_targets_lock(
                    source_account_id=contract.source_account_id, device_id=None
                )
            trigger = execution.trigger
            plan = _plan_parsed(contract, trigger, parsed or _parse_trigger(contract, trigger))
            result = _apply(contract, plan, execution)
            changed = plan.subjects
    except DomainError as exc:
        return record(contract, execution, actor, now, exc=exc)
    return record(contract, execution, actor, now, result=result, changed=changed)


def record(
    contract: Contract,
    execution: ContractExecution,
    actor: Any,
    now: dt.datetime,
    *,
    exc: DomainError | None = None,
    result: dict[str, Any] | None = None,
    changed: list[Any] | tuple = (),
    parties: dict[str, int] | None = None,
    obligation: SettlementObligation | bool | None = True,
) -> ContractExecution:
    """Write an execution's outcome (applied with `result`, or refused with `exc`: failed,
    or parked) and its one `contract.executed` or `contract.execution_failed` event.

    A caller that read them passes the contract's `parties` (organisation by role) and the
    execution's `obligation` (None: it has none); otherwise both are looked up."""
    kind = outcome_set(contract, execution, now, exc=exc, result=result)
    execution.save(update_fields=OUTCOME_FIELDS)
    subject, data = outcome_event(contract, execution, changed, parties, obligation)
    ledger_append(kind=kind, actor=actor, subject=subject, data=data)
    return execution


OUTCOME_FIELDS = ["status", "reason_code", "reason_detail", "result", "attempts", "updated_at"]


def outcome_set(
    contract: Contract,
    execution: ContractExecution,
    now: dt.datetime,
    *,
    exc: DomainError | None = None,
    result: dict[str, Any] | None = None,
) -> str:
    """Set an execution's outcome fields (`OUTCOME_FIELDS`, not saved); its event kind."""
    if exc is not None:
        park = (
            contract.on_failure == Contract.OnFailure.PARK
            or execution.attempts >= contract.max_attempts
        )
        execution.status = (
            ContractExecution.Status.PARKED if park else ContractExecution.Status.FAILED
        )
        execution.reason_code = exc.code
        execution.reason_detail = f"{exc.detail} {to_event_value(exc.extra)}"[:2000]
        execution.result = {}
        kind = events.EXECUTION_FAILED
    else:
        execution.status = ContractExecution.Status.APPLIED
        execution.reason_code = execution.reason_detail = ""
        execution.result = to_event_value(result)
        kind = events.EXECUTED
    execution.updated_at = now
    return kind


def outcome_event(
    contract: Contract,
    execution: ContractExecution,
    changed: list[Any] | tuple = (),
    parties: dict[str, int] | None = None,
    obligation: SettlementObligation | bool | None = True,
) -> tuple[list[Any], dict[str, Any]]:
    """The subjects and data of an execution's outcome event (see `record`)."""
    extra: list[Any] = [execution]
    if obligation is True:
        obligation = execution.obligation if hasattr(execution, "obligation") else None
    if obligation:
        extra.append(obligation)
    orgs = None if parties is None else sorted(parties.values())
    subject = events.subjects(
        contract, *extra, *_input_subjects(execution.trigger), *_unique(changed), party_orgs=orgs
    )
    data = events.execution_data(execution) | (
        {"reason_detail": execution.reason_detail} if execution.reason_code else {}
    )
    return subject, data


def _unique(subjects: list[Any]) -> list[Any]:
    """Subjects once each (a storage day names an account or a bundle many times)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for subject in subjects:
        key = (
            (subject[0], str(subject[1]))
            if isinstance(subject, tuple)
            else (subject.ledger_subject_type, str(subject.pk))
        )
        if key not in seen:
            seen.add(key)
            out.append(subject)
    return out


def storage_next_day(*, contract_id: int) -> str:
    """The day (YYYY-MM-DD) a storage contract executes next (the calendar tick)."""
    contract = Contract.objects.filter(pk=contract_id).first()
    if contract is None:
        raise errors.ContractNotFound(contract_id=contract_id)
    return _storage_next_day(contract)


def community_next_trigger(*, contract_id: int) -> str:
    """The period a community sharing contract executes next (the calendar tick)."""
    contract = Contract.objects.filter(pk=contract_id).first()
    if contract is None:
        raise errors.ContractNotFound(contract_id=contract_id)
    return community.next_trigger(contract)


def _storage_next_day(contract: Contract) -> str:
    """The day a storage contract executes next: after the battery's last, or its first."""
    state = StorageState.objects.filter(device_id=contract.device_id).first()
    return storage.next_day_start(contract, state).date().isoformat()


def _input_subjects(trigger: str) -> list[tuple[str, str]]:
    prefix, _, value = trigger.partition(":")
    return [("issuance", value)] if prefix == "issuance" else []


@transaction.atomic
def contract_execute(
    *, contract_id: int, trigger: str, now: dt.datetime | None = None
) -> ContractExecution | None:
    """Execute a contract for a trigger once: None when it was executed before (or is
    executing in a concurrent transaction, which wins) or the contract is not in force."""
    now = now or timezone.now()
    contract = Contract.objects.filter(pk=contract_id).first()
    if contract is None:
        raise errors.ContractNotFound(contract_id=contract_id)
    parsed = _parse_trigger(contract, trigger)
    if not _in_force(contract, parsed[1], now):
        return None
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
        return None
    return _run(contract, execution, SYSTEM, parsed)


@transaction.atomic
def contract_execution_retry(*, actor: User | str, execution_id: int) -> ContractExecution:
    """Run a failed or parked execution again (a party's member, or the retry task)."""
    execution = locks.execution_lock(execution_id)
    if execution is None:
        raise errors.ExecutionNotFound(execution_id=execution_id)
    contract = execution.contract
    if not isinstance(actor, str):
        orgs = contract.parties.select_related("organisation")
        if not any(
            user_can_act_for(actor, p.organisation, role=Membership.Role.OPERATOR) for p in orgs
        ):
            raise errors.NotContractParty(contract_id=contract.pk)
    if (
        execution.status == ContractExecution.Status.APPLIED
        or contract.status != Contract.Status.ACTIVE
    ):
        raise errors.ExecutionNotRetryable(
            execution_id=execution.pk, status=execution.status, contract_status=contract.status
        )
    execution.attempts += 1
    return _run(contract, execution, actor)
