import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from market import services
from registry.errors import DomainError


class Command(BaseCommand):
    help = (
        "Clear every energy slot whose gate has closed (the periodic task does it too), "
        "or one slot with --market and --slot."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--market", type=int, help="market id (with --slot)")
        parser.add_argument("--slot", help="slot start, ISO 8601 with its offset")

    def handle(self, *args, market: int | None, slot: str | None, **options) -> None:
        if (market is None) != (slot is None):
            raise CommandError("--market and --slot go together")
        try:
            if market is not None:
                cleared = [
                    services.slot_clear(
                        market_id=market, slot_start=dt.datetime.fromisoformat(slot)
                    )
                ]
            else:
                cleared = services.slot_clear_due()
        except (DomainError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for record in cleared:
            self.stdout.write(
                f"market {record.market_id} slot {record.slot_start.isoformat()}: "
                f"{record.volume_wh} Wh at {record.price} (clearing {record.pk})"
            )
        self.stdout.write(f"{len(cleared)} slot(s) cleared.")
