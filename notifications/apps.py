from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications and webhooks"

    def ready(self) -> None:
        from notifications import services, tasks

        services.EMAIL_TASK.register(tasks.notification_emails_send_task)
        services.WEBHOOK_TASK.register(tasks.webhook_deliveries_send_task)
