"""Registry-wide periodic tasks (thin: call a service)."""

from celery import shared_task

from registry.idempotency import idempotency_records_purge


@shared_task
def idempotency_keys_purge_task() -> int:
    """Delete Idempotency-Key records older than IDEMPOTENCY_KEY_TTL_HOURS."""
    return idempotency_records_purge()
