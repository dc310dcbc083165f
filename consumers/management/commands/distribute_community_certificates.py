"""Distribute communities' certificates by their keys now: `manage.py
distribute_community_certificates [--community ID] [--days 7]`.

The periodic task `consumers-distribute-certificates` (every
COMMUNITY_DISTRIBUTION_SECONDS) does the same; this runs it at once, or further back.
Hours already distributed are skipped, so running it again is harmless; hours whose
readings are incomplete or whose certificates are not issued yet wait for a later run.
"""

from django.core.management.base import BaseCommand

from consumers.services import community_certificates_distribute_due
from consumers.services.distribution import ALREADY_DISTRIBUTED, DUE_LOOKBACK_DAYS


class Command(BaseCommand):
    help = "Move the shared devices' certificates of each community to its members by its key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--community", type=int, default=None, help="Default: all.")
        parser.add_argument(
            "--days", type=int, default=DUE_LOOKBACK_DAYS, help="How far back (default 7)."
        )

    def handle(self, *args, **opts) -> None:
        runs = community_certificates_distribute_due(
            days=opts["days"], community_id=opts["community"]
        )
        for run in runs:
            span = f"community {run.community_id} {run.start:%Y-%m-%dT%H}..{run.end:%Y-%m-%dT%H}"
            if run.report is None:
                self.stderr.write(f"{span}: refused ({run.refused})")
                continue
            report = run.report.as_dict()
            waiting = [s for s in report["skipped"] if s["reason"] != ALREADY_DISTRIBUTED]
            self.stdout.write(
                f"{span}: {len(report['hours'])} hours distributed "
                f"({report['distributed_wh']} Wh, {report['kept_wh']} Wh kept), "
                f"{len(waiting)} waiting"
            )
