"""Thin Celery tasks of the charging app: the periodic retry of pending bills."""

from celery import shared_task

from charging import services


@shared_task(ignore_result=True)
def charging_bills_settle_task() -> int:
    """Periodic: pay the bills left pending (short funds at billing time) once funds allow."""
    return services.bills_settle_pending()
