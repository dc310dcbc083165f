"""Show the demo logins again (development), or give the demo users new passwords."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import demo
from accounts.models import User


class Command(BaseCommand):
    help = "Print the demo logins that seed_demo created (development only)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Give the demo users new passwords (e.g. when the saved logins are lost).",
        )

    def handle(self, *args, reset: bool, **options) -> None:
        if not settings.DEVELOPMENT:
            raise CommandError("Demo logins exist only in development (DJANGO_ENV=development).")
        if reset:
            for user in User.objects.filter(username__in=demo.DEMO_USERNAMES):
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.save(update_fields=["password"])
                demo.remember_login(user.username, password)
        path = demo.logins_file()
        if not path.is_file():
            self.stdout.write(
                "No saved demo logins (they were made before logins were saved): "
                "`make demo-logins ARGS=--reset` sets new passwords."
            )
            return
        base = settings.REGISTRY_BASE_URL
        self.stdout.write(f"Demo logins (web app: {base}/login/, admin: {base}/admin/):")
        for line in path.read_text().splitlines():
            self.stdout.write(f"  {line}")
