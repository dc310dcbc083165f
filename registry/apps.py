from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "GridProof registry"

    def ready(self) -> None:
        from registry.db_roles import grant_after_migrate

        post_migrate.connect(grant_after_migrate, dispatch_uid="registry.grant_app_role")
