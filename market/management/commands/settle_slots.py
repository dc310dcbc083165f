from django.core.management.base import BaseCommand, CommandError

from market import services
from registry.errors import DomainError


class Command(BaseCommand):
    help = (
        "Settle the delivery of every cleared energy slot that has ended against the meter "
        "readings (the periodic task does it too), or one slot with --clearing; then deliver the "
        "certificates issued since for settled slots with pending Wh."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--clearing", type=int, help="slot clearing id")

    def handle(self, *args, clearing: int | None, **options) -> None:
        try:
            if clearing is not None:
                settled = [services.slot_settle(clearing_id=clearing)]
            else:
                settled = services.slot_settle_due()
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        for settlement in settled:
            self.stdout.write(
                f"market {settlement.market_id} slot {settlement.slot_start.isoformat()}: "
                f"{settlement.status} {settlement.reason or ''} "
                f"{settlement.delivered_wh} of {settlement.cleared_wh} Wh delivered "
                f"(settlement {settlement.pk})"
            )
        done = sum(1 for s in settled if s.status == "settled")
        self.stdout.write(f"{done} slot(s) settled.")
        if clearing is None:
            # Certificates issued since earlier settlements: deliver the pending Wh.
            for settlement, moved in services.slot_certificates_deliver_due():
                self.stdout.write(
                    f"settlement {settlement.pk}: {moved} Wh of certificates delivered, "
                    f"{settlement.certificates_pending_wh} Wh pending"
                )
