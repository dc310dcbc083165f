"""Thin Celery tasks: expiry and automatic hourly issuance call the services."""

import logging

from celery import shared_task

from certificates import selectors, services
from registry.errors import DomainError

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def certificates_expire_due_task() -> int:
    """Expire every active bundle past its grid area's expiry date (periodic)."""
    total = 0
    while True:
        expired = services.certificate_expire_due()
        total += len(expired)
        if len(expired) < services.EXPIRE_BATCH:
            return total


@shared_task(ignore_result=True)
def certificate_auto_issue_device_task(device_id: int) -> int:
    """Issue every complete hour of one device with the automatic hourly policy.

    Start it with `delay_on_commit(device_id)` after a readings batch commits.
    """
    try:
        issuance = services.certificate_auto_issue(device_id=device_id)
    except DomainError as exc:
        log.warning(
            "automatic issuance for device %s refused: %s %s", device_id, exc.code, exc.extra
        )
        return 0
    return 0 if issuance is None else issuance.volume_wh


@shared_task(ignore_result=True)
def certificates_auto_issue_task() -> int:
    """Periodic sweep: automatic hourly issuance for every device whose policy asks for it."""
    total = 0
    for device_id in selectors.devices_for_auto_issuance():
        total += certificate_auto_issue_device_task(device_id)
    return total


def auto_issue_on_readings_accepted(batch) -> None:
    """A readings hook: once the batch commits, issue its automatic-policy devices' hours."""
    from assets.models import Device, Reading

    device_ids = (
        Reading.objects.filter(
            batch=batch, device__issuance_policy=Device.IssuancePolicy.AUTOMATIC_HOURLY
        )
        .order_by()
        .values_list("device_id", flat=True)
        .distinct()
    )
    for device_id in device_ids:
        certificate_auto_issue_device_task.delay_on_commit(device_id)
