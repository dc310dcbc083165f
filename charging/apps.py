from django.apps import AppConfig


class ChargingConfig(AppConfig):
    name = "charging"
    verbose_name = "EV charging"

    def ready(self) -> None:
        # Defines the charging.bill_settlers hook before the apps after charging in
        # INSTALLED_APPS (the market) register into it by name.
        import charging.services
        import charging.tasks  # noqa: F401  (the periodic retry of pending bills)
