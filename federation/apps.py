from django.apps import AppConfig


class FederationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "federation"
    verbose_name = "Federation (peers, witnessing, anchoring, mirrors)"

    def ready(self) -> None:
        # federation sits above certificates and ledger: it tells them about itself here
        # (docs/architecture.md, "Hooks").
        from certificates.crossregistry import EXPORT_DESTINATION_LOOKUPS
        from federation import anchoring, replication, selectors, tasks, triggers
        from registry.append_only import APPEND_ONLY_TABLES

        APPEND_ONLY_TABLES.register(triggers.FEDERATION_TABLES)
        EXPORT_DESTINATION_LOOKUPS.register(selectors.peer_partner_find)
        anchoring.CHECKPOINT_ANCHORED_HOOKS.register(tasks.peers_notify_later)
        anchoring.CHECKPOINT_ANCHORED_HOOKS.register(tasks.exports_deliver_later)
        replication.MIRROR_NOTIFIED_HOOKS.register(tasks.peer_replicate_later)
