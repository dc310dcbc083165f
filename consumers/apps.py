from django.apps import AppConfig

# Defined on import (before any ready()): the contracts app registers into it by name.
import consumers.owners  # noqa: F401


def _units_of(kind: str, data: dict) -> list[dict]:
    return data.get("units", [])


class ConsumersConfig(AppConfig):
    name = "consumers"
    verbose_name = "Consumers and communities"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import consumers.tasks  # noqa: F401  (the periodic distribution of certificates)
        from assets.selectors import READING_VISIBILITY_HOOKS
        from certificates.replay import REPLAY_EXTENSIONS, UNIT_EVENT_SOURCES
        from consumers.contract_sharing import PROVIDER
        from consumers.events import COMMUNITY_CERTIFICATES_DISTRIBUTED
        from consumers.market_consumption import households_consumed_wh
        from consumers.replay import replay_consumers
        from consumers.reports import account_hourly_consumption
        from consumers.selectors import readings_hide_household_meters
        from registry.hooks import HOOKS

        READING_VISIBILITY_HOOKS.register(readings_hide_household_meters)
        # The certificates replay follows the units a distribution reserves and delivers
        # (through the public reservation service, which appends no event of its own).
        UNIT_EVENT_SOURCES.register(((COMMUNITY_CERTIFICATES_DISTRIBUTED,), _units_of))
        # replay_ledger rebuilds sites, consents, communities and distributions after it.
        REPLAY_EXTENSIONS.register(replay_consumers)
        # A household's standing retirement retires what its import meters consumed, hour
        # by hour. Layer-6 apps do not import each other, so the contracts' hook is found
        # by name; contracts comes before consumers in INSTALLED_APPS, so its ready() has
        # defined it (a KeyError here says otherwise).
        HOOKS["contracts.consumption_lookups"].register(account_hourly_consumption)
        # A community_sharing contract distributes through this app's own service.
        HOOKS["contracts.community_sharing"].register(PROVIDER)
        # A household buyer's slot is settled against its sites' import meters. The market
        # comes after consumers in INSTALLED_APPS, but its models, which define the hook
        # (market.metering), are loaded before any ready().
        HOOKS["market.site_consumption_lookups"].register(households_consumed_wh)
