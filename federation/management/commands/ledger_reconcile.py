from django.core.management.base import BaseCommand, CommandError

from federation.reconcile import ledger_reconcile
from ledger.fence import fence_state


class Command(BaseCommand):
    help = (
        "After a restore: ask every active peer for the newest checkpoint it holds of this "
        "log and allow signing again only if each is consistent with the local log "
        "(docs/operations.md, 'Backup and restore')."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--without-peers",
            action="store_true",
            help="no peer mirrors this log: lift the fence without any peer's answer",
        )

    def handle(self, *args, without_peers: bool, **options) -> None:
        state = fence_state()
        if state["current"] is None:
            self.stdout.write(
                "No signing fence on this database (SQLite has no identity to compare): "
                "nothing to reconcile."
            )
            return
        self.stdout.write(
            f"Signing fence: {'FENCED' if state['fenced'] else 'open'} "
            f"(recorded {state['recorded']}, this database {state['current']})."
        )
        report = ledger_reconcile(without_peers=without_peers)
        self.stdout.write(f"This log: {report.size} entries.")
        for copy in report.peers:
            size = "" if copy.size is None else f" size {copy.size}"
            detail = f": {copy.detail}" if copy.detail else ""
            self.stdout.write(f"  {copy.peer}: {copy.status}{size}{detail}")
        if report.lifted:
            self.stdout.write("Consistent: checkpoints may be signed from this database.")
            return
        if report.missing:
            start, end = report.missing
            raise CommandError(
                f"ENTRIES LOST: peers hold checkpoints up to size {end}; entries "
                f"[{start}, {end}) are missing here. Signing stays fenced; restore a newer "
                "backup (docs/operations.md, 'Backup and restore')."
            )
        if report.counts("diverged"):
            raise CommandError(
                "DIVERGED: this log contradicts a checkpoint it signed before. Signing stays "
                "fenced; do not lift it by hand."
            )
        if not report.fenced_before:
            self.stdout.write("Signing was not fenced; no peer confirmed or contradicted the log.")
            return
        raise CommandError(
            "No peer confirmed this log (none mirrors it, or none answered). Signing stays "
            "fenced; run again when a peer answers, or with --without-peers if none mirrors it."
        )
