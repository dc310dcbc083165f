from django.core.management.base import BaseCommand

from ledger.services import checkpoint_create


class Command(BaseCommand):
    help = "Sign a checkpoint of the ledger now if it grew since the last one; print it."

    def handle(self, *args, **options) -> None:
        checkpoint, created = checkpoint_create()
        verb = "Signed" if created else "Unchanged since"
        self.stderr.write(f"{verb} checkpoint at size {checkpoint.size}:")
        self.stdout.write(checkpoint.note, ending="")
