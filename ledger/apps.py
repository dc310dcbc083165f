from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        from ledger import kick, tasks, triggers
        from registry.append_only import APPEND_ONLY_TABLES

        APPEND_ONLY_TABLES.register(triggers.LEDGER_TABLES)
        APPEND_ONLY_TABLES.register(triggers.INDEX_TABLES)
        kick.INTEGRATOR_TASK.register(tasks.ledger_integrate_task)
