"""Thin Celery tasks: executions on issuance, the monthly calendar tick, retries."""

import logging

from celery import shared_task
from django.utils import timezone

from contracts import selectors, services
from contracts.kinds.base import previous_month
from registry.errors import DomainError

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def contracts_execute_issuance_task(issuance_id: int) -> int:
    """Execute every share contract an issuance concerns, together in one transaction
    (`contracts.services.group`); return how many executions ran."""
    return len(services.contracts_execute_issuance(issuance_id=issuance_id))


@shared_task(ignore_result=True)
def contracts_calendar_tick_task() -> int:
    """Periodic: expire contracts past their end, run last month's standing retirements
    (once each: re-running the tick skips what was executed), the storage days and the
    community sharing periods that are over, retry failed executions and
    pay the settlement obligations left open (short funds) once the funds are there."""
    now = timezone.now()
    services.contract_expire_due(now=now)
    period = previous_month(now)
    done = 0
    for contract_id in selectors.contracts_for_month():
        try:
            if services.contract_execute(
                contract_id=contract_id, trigger=f"period:{period}", now=now
            ):
                done += 1
        except DomainError as exc:
            log.warning("contract %s for %s: %s", contract_id, period, exc.code)
    for contract_id in selectors.contracts_for_day():
        done += _storage_days(contract_id, now)
    for contract_id in selectors.contracts_for_community():
        done += _community_periods(contract_id, now)
    for execution_id in selectors.executions_to_retry():
        try:
            services.contract_execution_retry(actor=services.SYSTEM, execution_id=execution_id)
        except DomainError as exc:
            log.warning("retry of execution %s: %s", execution_id, exc.code)
    services.settlement_obligations_settle_open()
    return done


def _storage_days(contract_id: int, now, limit: int = 31) -> int:
    """A storage contract's complete days after the battery's last, in order, up to
    `limit` a tick; stops at the first that does not apply (it waits for its cause)."""
    done = 0
    for _ in range(limit):
        try:
            day = services.storage_next_day(contract_id=contract_id)
            execution = services.contract_execute(
                contract_id=contract_id, trigger=f"day:{day}", now=now
            )
        except DomainError as exc:
            log.warning("storage contract %s: %s", contract_id, exc.code)
            break
        if execution is None or execution.status != "applied":
            break
        done += 1
    return done


def _community_periods(contract_id: int, now, limit: int = 48) -> int:
    """A community sharing contract's complete periods after its latest executed one, in
    order, up to `limit` a tick. A refused period does not hold the next ones back (each
    hour is distributed on its own; the retry task retries it when the contract says so),
    except a changed membership or key: nothing more runs until the parties retry the
    parked period (the membership restored) or end the contract."""
    done = 0
    if selectors.community_sharing_halted(contract_id=contract_id):
        return 0
    for _ in range(limit):
        try:
            trigger = services.community_next_trigger(contract_id=contract_id)
            execution = services.contract_execute(contract_id=contract_id, trigger=trigger, now=now)
        except DomainError as exc:
            log.warning("community sharing contract %s: %s", contract_id, exc.code)
            break
        if execution is None:  # not over yet (or past the contract's end)
            break
        done += execution.status == "applied"
    return done


def execute_on_issued(issuance) -> None:
    """The certificates.issued hook: once the issuance commits, run its contracts."""
    contracts_execute_issuance_task.delay_on_commit(issuance.pk)
