from django.apps import AppConfig


class ConsumersConfig(AppConfig):
    name = "consumers"
    verbose_name = "Consumers and communities"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from assets.selectors import READING_VISIBILITY_HOOKS
        from consumers.selectors import readings_hide_household_meters

        READING_VISIBILITY_HOOKS.register(readings_hide_household_meters)
