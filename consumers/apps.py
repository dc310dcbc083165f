from django.apps import AppConfig


class ConsumersConfig(AppConfig):
    name = "consumers"
    verbose_name = "Consumers and communities"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from assets.selectors import READING_VISIBILITY_HOOKS
        from consumers.reports import account_hourly_consumption
        from consumers.selectors import readings_hide_household_meters
        from registry.hooks import HOOKS

        READING_VISIBILITY_HOOKS.register(readings_hide_household_meters)
        # A household's standing retirement retires what its import meters consumed, hour
        # by hour. Layer-6 apps do not import each other, so the contracts' hook is found
        # by name; contracts comes before consumers in INSTALLED_APPS, so its ready() has
        # defined it (a KeyError here says otherwise).
        HOOKS["contracts.consumption_lookups"].register(account_hourly_consumption)
