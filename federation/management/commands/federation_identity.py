"""`manage.py federation_identity`: print what a peer needs to register this registry."""

import json

from django.core.management.base import BaseCommand

from federation.api.views import identity_body


class Command(BaseCommand):
    help = "Print this registry's origin, base URL and verifier keys (JSON) for peering."

    def handle(self, *args, **options) -> None:
        self.stdout.write(json.dumps(identity_body(), indent=2))
