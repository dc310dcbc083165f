"""`manage.py replay_ledger`: rebuild holdings from the ledger alone, compare with the tables."""

from django.core.management.base import BaseCommand, CommandError

from certificates.replay import REPLAY_EXTENSIONS, replay_ledger


class Command(BaseCommand):
    help = (
        "Replay every certificate event of the ledger (canonical JSON, in sequence order) "
        "into empty holdings and compare the result with the bundle table. Exits 1 and "
        "lists the differences when they disagree."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--holdings", action="store_true", help="print every account's replayed holdings"
        )

    def handle(self, *args, **options) -> None:
        report = replay_ledger()
        if options["holdings"]:
            for account_id, holdings in report.holdings.items():
                parts = ", ".join(f"{status} {wh} Wh" for status, wh in sorted(holdings.items()))
                self.stdout.write(f"account {account_id}: {parts}")
        summary = f"{report.events} certificate events, {report.bundles} bundles replayed"
        for extension in REPLAY_EXTENSIONS:
            extra = extension()
            summary += f"; {extra.summary}"
            for problem in extra.problems:
                report.problem(problem)
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"OK: {summary}; the tables agree."))
            return
        for problem in report.problems:
            self.stderr.write(problem)
        if report.problem_count > len(report.problems):
            self.stderr.write(f"… and {report.problem_count - len(report.problems)} more")
        raise CommandError(f"MISMATCH: {summary}; {report.problem_count} difference(s).")
