"""Thin Celery tasks of the market: clear the energy slots whose gate has closed, settle
the delivery of those that have ended, run the trading agents for the next open slot."""

import logging

from celery import shared_task

from market import services
from market.agents.services import agents_run_due

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def market_slots_clear_due_task() -> int:
    """Clear every slot of every energy market whose gate has closed (periodic)."""
    cleared = services.slot_clear_due()
    for record in cleared:
        log.info(
            "cleared market %s slot %s: %s Wh at %s",
            record.market_id,
            record.slot_start.isoformat(),
            record.volume_wh,
            record.price,
        )
    return len(cleared)


@shared_task(ignore_result=True)
def market_slots_settle_due_task() -> int:
    """Settle the delivery of every cleared slot that has ended, then deliver the
    certificates issued since for settled slots with pending Wh (periodic)."""
    settled = services.slot_settle_due()
    for settlement in settled:
        log.info(
            "settled market %s slot %s: %s of %s Wh delivered (%s)",
            settlement.market_id,
            settlement.slot_start.isoformat(),
            settlement.delivered_wh,
            settlement.cleared_wh,
            settlement.reason or "metered",
        )
    # Certificates issued after earlier settlements: deliver the slots' pending Wh.
    for settlement, moved in services.slot_certificates_deliver_due():
        log.info(
            "market %s slot %s: %s Wh of certificates delivered later, %s Wh pending",
            settlement.market_id,
            settlement.slot_start.isoformat(),
            moved,
            settlement.certificates_pending_wh,
        )
    return len(settled)


@shared_task(ignore_result=True)
def market_agents_run_due_task() -> int:
    """Run every active trading agent for its market's next open slot (periodic; an agent
    runs once per slot)."""
    decided = agents_run_due()
    for decision in decided:
        log.info(
            "agent %s slot %s: %s (%s)",
            decision.agent_id,
            decision.slot_start.isoformat(),
            decision.action,
            decision.reason,
        )
    return len(decided)
