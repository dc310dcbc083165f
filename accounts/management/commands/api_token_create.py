"""Create an API token for a user and print it once (operators, rotation, CI fuzzing).

    manage.py api_token_create USERNAME [--name NAME] [--expires-in-days N]

Prints only the token on stdout, so `TOKEN=$(manage.py api_token_create alice)` works.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (shown once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="created by manage.py api_token_create")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            help="0: never; default: API_TOKEN_DEFAULT_TTL_DAYS",
        )

    def handle(
        self, *args, username: str, name: str, expires_in_days: int | None, **options
    ) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        _token, plaintext = api_token_create(user=user, name=name, expires_in_days=expires_in_days)
        self.stdout.write(plaintext)
