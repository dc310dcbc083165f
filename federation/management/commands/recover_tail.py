"""`manage.py recover_tail --peer NAME`: take back the lost tail of the log from a peer."""

from django.core.management.base import BaseCommand, CommandError

from federation.recovery import ledger_tail_recover_from, peer_find
from ledger.errors import TailRecoveryRefused


class Command(BaseCommand):
    help = (
        "After a restore that lost published entries: fetch them from a peer's mirror of this "
        "log (checked against a checkpoint this log signed), append them and rebuild the "
        "tables from them (docs/operations.md, 'Backup and restore')."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--peer", required=True, help="the peer's origin, name or base URL")

    def handle(self, *args, peer: str, **options) -> None:
        try:
            result = ledger_tail_recover_from(peer_find(peer))
        except TailRecoveryRefused as exc:
            raise CommandError(f"REFUSED: {exc.detail}") from None
        if result.recovered is None:
            self.stdout.write(
                f"{result.peer} holds size {result.peer_size}; this log has "
                f"{result.local_size} entries: nothing to recover."
            )
            return
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(result.recovered.kinds.items()))
        self.stdout.write(
            f"Recovered entries [{result.recovered.start}, {result.recovered.end}) from "
            f"{result.peer} ({kinds}); the tables are rebuilt. Now run "
            "`manage.py verify_ledger`, `manage.py replay_ledger` and `manage.py ledger_reconcile`."
        )
