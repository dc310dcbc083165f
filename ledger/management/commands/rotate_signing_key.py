from django.core.management.base import BaseCommand, CommandError

from ledger.errors import LedgerError
from ledger.rotation import log_key_rotate
from ledger.services import checkpoint_create, ledger_integrate_pending


class Command(BaseCommand):
    help = (
        "Rotate the log signing key to REGISTRY_NEXT_SIGNING_KEY: sign a last checkpoint with "
        "the current key, append the ledger.key_rotated announcement signed by it, integrate "
        "it and sign the first checkpoint with the new key. Stage REGISTRY_NEXT_SIGNING_KEY on "
        "every process first (docs/operations.md, 'Rotating the log key')."
    )

    def handle(self, *args, **options) -> None:
        try:
            before, _ = checkpoint_create()
            self.stderr.write(f"Checkpoint at size {before.size} signed by key {before.key_id}.")
            pending = log_key_rotate(actor="system:key-rotation")
            ledger_integrate_pending()
            after, _ = checkpoint_create()
        except LedgerError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        self.stderr.write(
            f"Announced the new key (pending event {pending.pk}); checkpoint at size "
            f"{after.size} signed by key {after.key_id}."
        )
        self.stdout.write(checkpoint_create()[0].note, ending="")
