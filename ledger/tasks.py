"""Thin Celery tasks: the integrator and checkpoints."""

from celery import shared_task
from django.conf import settings

from ledger import services, tiles


@shared_task(ignore_result=True)
def ledger_integrate_task(sweep: bool = False) -> int:
    """Integrate queued events: kicked on commit, or as the periodic sweep (`sweep=True`)."""
    if sweep:
        return services.ledger_integrate_pending()
    return services.ledger_integrate_queued()


@shared_task(ignore_result=True)
def checkpoint_create_task() -> int:
    """Sign the tree head if it grew (periodic)."""
    checkpoint, created = services.checkpoint_create()
    if created and settings.LEDGER_TILES_DIR:
        ledger_tiles_write_task.delay()
    return checkpoint.size


@shared_task(ignore_result=True)
def ledger_tiles_write_task() -> int | None:
    """Write the tiles up to the latest checkpoint (LEDGER_TILES_DIR; after a new
    checkpoint, and periodic); a failure is logged and the next run retries."""
    return tiles.tiles_write_logged()
