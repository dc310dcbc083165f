from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ledger.tiles import TilesWriteError, tiles_write


class Command(BaseCommand):
    help = (
        "Write the log as C2SP tlog-tiles up to the latest checkpoint, into LEDGER_TILES_DIR "
        "or --dir (a first fill, or a catch-up after a failure)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dir", help="the tiles directory (default: LEDGER_TILES_DIR)")

    def handle(self, *args, **options) -> None:
        directory = options["dir"] or settings.LEDGER_TILES_DIR
        if not directory:
            raise CommandError("Set LEDGER_TILES_DIR or pass --dir.")
        try:
            size = tiles_write(directory=directory)
        except TilesWriteError as exc:
            raise CommandError(str(exc)) from None
        if size is None:
            raise CommandError(f"Another writer holds {directory}; try again.")
        self.stdout.write(f"Tiles in {directory} serve tree size {size}.")
