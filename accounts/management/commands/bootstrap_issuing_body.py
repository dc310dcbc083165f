"""Create the registry operator's organisation on a fresh installation."""

from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import Organisation, User
from registry.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create the issuing body (approved) with an existing user as its administrator. "
        "Run once, after `createsuperuser`; later participants register through the API."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--admin", required=True, help="username of the administrator")
        parser.add_argument("--legal-name", required=True)
        parser.add_argument("--country", required=True, help="ISO 3166-1 alpha-2, e.g. DE")
        parser.add_argument("--registration-id", required=True)

    def handle(
        self, *args, admin: str, legal_name: str, country: str, registration_id: str, **options
    ) -> None:
        if Organisation.objects.filter(is_issuing_body=True).exists():
            raise CommandError("An issuing body exists already; it approves everyone else.")
        user = User.objects.filter(username=admin).first()
        if user is None:
            raise CommandError(f"No user {admin!r}: create it first (manage.py createsuperuser).")
        try:
            organisation = services.issuing_body_bootstrap(
                legal_name=legal_name,
                country=country,
                registration_id=registration_id,
                admin=user,
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(
            f"Issuing body #{organisation.pk} {legal_name!r}, administered by {admin}."
        )
