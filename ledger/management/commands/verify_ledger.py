import time

from django.core.management.base import BaseCommand, CommandError

from ledger.integrity import LedgerTampered, ledger_verify
from registry.db_roles import ledger_protection_summary


class Command(BaseCommand):
    help = (
        "Recompute every entry's leaf hash and chain, every tree node, every checkpoint's "
        "root and signature, and the tree head; fail naming the first disagreement."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--chunk-size", type=int, default=20000)
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--first-key",
            help="the verifier key the log was first signed with, where the key history "
            "starts (default: REGISTRY_FIRST_VKEY, else the ledger's first rotation)",
        )

    def handle(
        self, *args, chunk_size: int, no_progress: bool, first_key: str | None, **options
    ) -> None:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            rate = done / elapsed if elapsed else 0.0
            width = 30
            filled = width * done // total if total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stderr.write(f"\r[{bar}] {done}/{total} entries, {rate:,.0f}/s ", ending="")
            self.stderr.flush()

        try:
            report = ledger_verify(
                chunk_size=chunk_size,
                progress=None if no_progress else progress,
                first_key=first_key,
            )
        except LedgerTampered as exc:
            if not no_progress:
                self.stderr.write("")
            raise CommandError(f"LEDGER VERIFICATION FAILED: {exc}") from None
        if not no_progress:
            self.stderr.write("")
        rate = report.entries / report.seconds if report.seconds else 0.0
        self.stdout.write(
            f"Ledger OK: {report.entries} entries, {report.nodes} tree nodes, "
            f"{report.checkpoints} checkpoints verified in {report.seconds:.2f} s "
            f"({rate:,.0f} entries/s)."
        )
        self.stdout.write(
            f"Subject map: {report.index_commits} commitments agree with the map recomputed "
            "from the entries."
        )
        protection = ledger_protection_summary()
        if protection.startswith("REWRITABLE"):
            self.stderr.write(f"WARNING: {protection}")
        else:
            self.stdout.write(f"Database role: {protection}.")
