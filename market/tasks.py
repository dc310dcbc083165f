"""Thin Celery tasks of the market: clear the energy slots whose gate has closed."""

import logging

from celery import shared_task

from market import services

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
