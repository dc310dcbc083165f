from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "Contracts"

    def ready(self) -> None:
        # Defines contracts.consumption_lookups (contracts.kinds.retirement) before the apps
        # after contracts in INSTALLED_APPS (consumers) register into it by name.
        import contracts.kinds  # noqa: F401
        from certificates.services import ISSUED_HOOKS
        from contracts.tasks import execute_on_issued

        ISSUED_HOOKS.register(execute_on_issued)

        from certificates.replay import REPLAY_EXTENSIONS, UNIT_EVENT_SOURCES
        from contracts.replay import STORAGE_UNIT_EVENTS, replay_storage
        from contracts.replay_executions import replay_contracts
        from contracts.selectors import communities_under_contract
        from registry.hooks import HOOKS

        # The consumers app (defined on import, before any ready()) leaves communities
        # under a sharing contract to the contract; by name, as layer-6 apps do not import
        # each other.
        if "consumers.distribution_owners" in HOOKS:
            HOOKS["consumers.distribution_owners"].register(communities_under_contract)

        UNIT_EVENT_SOURCES.register(STORAGE_UNIT_EVENTS)
        REPLAY_EXTENSIONS.register(replay_storage)
        REPLAY_EXTENSIONS.register(replay_contracts)

        # The market's trading agents keep a battery reserve: they read the charge here
        # (market/models.py, imported before any ready(), defined the hook).
        from contracts.selectors import organisation_storage_charge
        from registry.hooks import HOOKS

        HOOKS["market.battery_charge_lookups"].register(organisation_storage_charge)
