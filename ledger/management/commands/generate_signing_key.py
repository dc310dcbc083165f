"""Make the registry's Ed25519 checkpoint key (note key format)."""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ledger.signing import generate_private_key


class Command(BaseCommand):
    help = (
        "Generate a checkpoint signing key named after REGISTRY_ORIGIN and write it to "
        "REGISTRY_SIGNING_KEY_FILE (mode 0600), or print it with --print."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--if-missing", action="store_true", help="do nothing if a key is configured"
        )
        parser.add_argument(
            "--print",
            action="store_true",
            dest="print_key",
            help="print a new private key to stdout instead of writing the file",
        )
        parser.add_argument(
            "--name", default=None, help="key name = checkpoint origin (default REGISTRY_ORIGIN)"
        )
        parser.add_argument("--force", action="store_true", help="replace an existing key file")

    def handle(
        self, *args, if_missing: bool, print_key: bool, name: str | None, force: bool, **options
    ) -> None:
        name = name or settings.REGISTRY_ORIGIN
        if print_key:
            skey, vkey = generate_private_key(name)
            self.stdout.write(skey)
            self.stderr.write(f"verifier key: {vkey}")
            return
        path = Path(settings.REGISTRY_SIGNING_KEY_FILE)
        if if_missing and (path.exists() or settings.REGISTRY_SIGNING_KEY):
            self.stdout.write(f"A signing key is configured already ({path}).")
            return
        if path.exists() and not force:
            raise CommandError(
                f"{path} exists: replacing a signing key orphans every checkpoint signed with "
                "it. Pass --force if that is what you want."
            )
        skey, vkey = generate_private_key(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(skey + "\n")
        path.chmod(0o600)
        self.stdout.write(f"Wrote the signing key to {path} (mode 0600).\nVerifier key: {vkey}")
