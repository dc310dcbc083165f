"""`manage.py anchor`: send our latest checkpoint to every due witness now."""

from django.core.management.base import BaseCommand

from federation.anchoring import anchor_all
from federation.selectors import federation_status


class Command(BaseCommand):
    help = "Anchor our latest checkpoint now: ask every due witness peer for a cosignature."

    def handle(self, *args, **options) -> None:
        for origin, outcome in anchor_all().items():
            self.stdout.write(f"{origin}: {outcome}")
        status = federation_status()
        self.stdout.write(
            f"latest checkpoint {status.checkpoint_size}; anchored {status.anchored_size} "
            f"(quorum {status.quorum})"
        )
