"""`manage.py deliver_exports [--export ID]`: deliver certificate exports to partners now."""

from django.core.management.base import BaseCommand, CommandError

from certificates.models import CertificateExport
from federation import transfers


class Command(BaseCommand):
    help = (
        "Deliver pending certificate exports now: every export that is due, or one export "
        "regardless of its back-off."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--export", type=int, metavar="ID", help="only this export, even if backing off"
        )

    def handle(self, *args, export: int | None, **options) -> None:
        if export is not None:
            if not CertificateExport.objects.filter(pk=export).exists():
                raise CommandError(f"no certificate export with id {export}")
            outcomes = {export: transfers.export_deliver(export_id=export)}
        else:
            outcomes = transfers.export_deliver_due()
        for export_id, outcome in outcomes.items():
            self.stdout.write(f"export {export_id}: {outcome}")
        if not outcomes:
            self.stdout.write("no exports due")
