"""Demo data for `make run`: idempotent, so re-running it changes nothing.

Each app may provide `<app>/demo.py` with `seed(stdout) -> None`; they run in
dependency order. The first run prints the admin login once.
"""

import importlib

from django.core.management.base import BaseCommand

DEMO_MODULES = [
    "accounts.demo",
    "assets.demo",
    "certificates.demo",
    "consumers.demo",
    "market.demo",
    "ledger.demo",
]


class Command(BaseCommand):
    help = "Create demo participants, devices, readings and certificates (idempotent)."

    def handle(self, *args, **options) -> None:
        for name in DEMO_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
                continue
            module.seed(self.stdout)
