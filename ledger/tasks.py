"""Thin Celery tasks: the integrator and checkpoints."""

from celery import shared_task

from ledger import services


@shared_task(ignore_result=True)
def ledger_integrate_task(sweep: bool = False) -> int:
    """Integrate queued events: kicked on commit, or as the periodic sweep (`sweep=True`)."""
    if sweep:
        return services.ledger_integrate_pending()
    return services.ledger_integrate_queued()


@shared_task(ignore_result=True)
def checkpoint_create_task() -> int:
    """Sign the tree head if it grew (periodic)."""
    checkpoint, _created = services.checkpoint_create()
    return checkpoint.size
