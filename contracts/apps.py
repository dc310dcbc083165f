from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "Contracts"

    def ready(self) -> None:
        from certificates.services import ISSUED_HOOKS
        from contracts.tasks import execute_on_issued

        ISSUED_HOOKS.register(execute_on_issued)
