"""Distribute communities' certificates by their keys: `manage.py
distribute_community_certificates [--community ID] [--days 7]` (run it from cron, hourly).

For each community with shared devices, the hours of the last `--days` days up to the
current hour, month by month, through `community_certificates_distribute`, acting as the
operator organisation's first admin or operator (as the MQTT gateway acts for a meter's
organisation). Hours already distributed are skipped, so running it again is harmless;
hours whose readings are incomplete or whose certificates are not issued yet are reported
and taken on a later run.
"""

import datetime as dt

from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import Membership
from consumers.models import Community
from consumers.services import community_certificates_distribute
from consumers.services.distribution import MAX_DISTRIBUTION_SPAN
from registry.errors import DomainError


class Command(BaseCommand):
    help = "Move the shared devices' certificates of each community to its members by its key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--community", type=int, default=None, help="Default: all.")
        parser.add_argument("--days", type=int, default=7, help="How far back (default 7).")

    def handle(self, *args, **opts) -> None:
        end = timezone.now().replace(minute=0, second=0, microsecond=0)
        first = end - dt.timedelta(days=opts["days"])
        communities = Community.objects.filter(devices__isnull=False).distinct().order_by("pk")
        if opts["community"]:
            communities = communities.filter(pk=opts["community"])
        for community in communities:
            membership = (
                Membership.objects.filter(
                    organisation_id=community.organisation_id,
                    role__in=[Membership.Role.ADMIN, Membership.Role.OPERATOR],
                )
                .select_related("user")
                .order_by("pk")
                .first()
            )
            if membership is None:
                self.stderr.write(f"community {community.pk}: its operator has no user")
                continue
            start = first
            while start < end:
                stop = min(start + MAX_DISTRIBUTION_SPAN, end)
                try:
                    report = community_certificates_distribute(
                        actor=membership.user, community_id=community.pk, start=start, end=stop
                    ).as_dict()
                except DomainError as exc:
                    self.stderr.write(f"community {community.pk}: {exc.code} {exc.detail}")
                    break
                waiting = [s for s in report["skipped"] if s["reason"] != "already_distributed"]
                self.stdout.write(
                    f"community {community.pk} {start:%Y-%m-%dT%H}..{stop:%Y-%m-%dT%H}: "
                    f"{len(report['hours'])} hours distributed ({report['distributed_wh']} Wh, "
                    f"{report['kept_wh']} Wh kept), {len(waiting)} waiting"
                )
                start = stop
