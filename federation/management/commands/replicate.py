"""`manage.py replicate [--peer ORIGIN]`: bring mirrors up to date now."""

from django.core.management.base import BaseCommand, CommandError

from federation.index_check import mirror_index_check
from federation.models import Peer
from federation.replication import mirror_peer_ids, peer_replicate


class Command(BaseCommand):
    help = "Replicate the logs of mirror peers now (all active mirrors, or one)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--peer", metavar="ORIGIN", help="only this peer's log")
        parser.add_argument(
            "--max-entries",
            type=int,
            default=0,
            help="stop after this many entries per peer (default: until caught up)",
        )

    def handle(self, *args, peer: str | None, max_entries: int, **options) -> None:
        if peer:
            found = Peer.objects.filter(origin=peer).first()
            if found is None:
                raise CommandError(f"no peer with origin {peer!r}")
            if not (found.is_mirror and found.is_active):
                raise CommandError(f"{peer} is not an active mirror peer ({found.status})")
            peer_ids = [found.pk]
        else:
            peer_ids = mirror_peer_ids()
        failed = False
        for peer_id in peer_ids:
            result = peer_replicate(peer_id=peer_id, max_entries=max_entries, force=True)
            line = (
                f"{result.origin}: {result.outcome}, {result.size_before} -> {result.size_after} "
                f"entries ({result.entries} new)"
            )
            if result.error:
                line += f": {result.error}"
            if result.outcome == "replicated":
                check = mirror_index_check(peer_id=peer_id)
                line += f"; subject map: {check.commitments} commitments agree"
                if check.wrong_at is not None:
                    line += f", entry {check.wrong_at} commits a wrong root (peer flagged)"
                    failed = True
            failed |= result.outcome in ("failed", "flagged")
            self.stdout.write(line)
        if failed:
            raise CommandError("replication failed for at least one peer")
