"""Thin Celery tasks: derive notifications, send e-mail, attempt webhook deliveries."""

from celery import shared_task

from notifications import services, webhooks


@shared_task(ignore_result=True)
def notifications_derive_task() -> int:
    """Read new ledger entries into notifications and deliveries (periodic)."""
    return services.notifications_derive_pending()


@shared_task(ignore_result=True)
def certificates_expiring_notify_task() -> int:
    """Warn about bundles expiring soon (daily)."""
    return services.certificates_expiring_notify()


@shared_task(ignore_result=True)
def notification_emails_send_task() -> int:
    """Send pending notification e-mail (on commit of new notifications, and periodic)."""
    return services.notification_emails_send_pending()


@shared_task(ignore_result=True)
def webhook_deliveries_send_task() -> int:
    """Attempt due webhook deliveries (periodic, and started on commit of new ones)."""
    return webhooks.webhook_deliveries_send()
