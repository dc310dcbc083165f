from django.core.management.base import BaseCommand

from ledger.selectors import ledger_queue_length
from ledger.services import ledger_integrate


class Command(BaseCommand):
    help = "Number every committed pending ledger event now (the Celery task does it too)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=5000, help="events per transaction")

    def handle(self, *args, batch: int, **options) -> None:
        total = 0
        while done := ledger_integrate(max_batch=batch):
            total += done
        self.stdout.write(
            f"Integrated {total} event(s); {ledger_queue_length()} waiting (committed since)."
        )
