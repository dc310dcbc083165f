from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ledger.models import Checkpoint
from ledger.tiles import TilesWriteError, tiles_write, written_size
from ledger.verify.tiles import TilesError, check_tiles


class Command(BaseCommand):
    help = (
        "Write the log as C2SP tlog-tiles up to the latest checkpoint, into LEDGER_TILES_DIR "
        "or --dir (a first fill, or a catch-up after a failure); --check then reads the "
        "whole directory back and checks it against the database's checkpoint."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dir", help="the tiles directory (default: LEDGER_TILES_DIR)")
        parser.add_argument(
            "--check", action="store_true", help="also verify every tile against the entries"
        )

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
        if not options["check"]:
            return
        root = Path(directory)
        size = written_size(root)
        checkpoint = Checkpoint.objects.filter(size=size).first()
        if checkpoint is None:
            raise CommandError(f"No checkpoint of size {size} in the database.")

        def get(path: str) -> bytes | None:
            target = root / path
            return target.read_bytes() if target.is_file() else None

        try:
            result = check_tiles(get, size, bytes(checkpoint.root))
        except TilesError as exc:
            raise CommandError(f"The tiles do not verify: {exc}") from None
        self.stdout.write(
            f"Checked {result.bundles} entry bundles and {result.tiles} hash tiles: "
            f"they rebuild the root of the checkpoint of size {size}."
        )
