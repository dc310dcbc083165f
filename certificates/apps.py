from django.apps import AppConfig


class CertificatesConfig(AppConfig):
    name = "certificates"
    verbose_name = "Certificates"

    def ready(self) -> None:
        from accounts.services import ACCOUNT_CLOSE_GUARDS
        from assets.services import READINGS_ACCEPTED_HOOKS
        from certificates.recovery import KINDS as RECOVERABLE_KINDS
        from certificates.recovery import certificate_entry_rebuild
        from certificates.services import account_close_guard
        from certificates.tasks import auto_issue_on_readings_accepted
        from ledger.recovery import TAIL_REBUILDERS

        if account_close_guard not in ACCOUNT_CLOSE_GUARDS:
            ACCOUNT_CLOSE_GUARDS.append(account_close_guard)
        if auto_issue_on_readings_accepted not in READINGS_ACCEPTED_HOOKS:
            READINGS_ACCEPTED_HOOKS.append(auto_issue_on_readings_accepted)
        TAIL_REBUILDERS.register((RECOVERABLE_KINDS, certificate_entry_rebuild))
