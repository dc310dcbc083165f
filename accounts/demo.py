"""Demo participants: the issuing body, a producer cooperative, a buyer and an auditor."""

import secrets
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accounts import services
from accounts.models import Account, Organisation, User

DEMO_ORGANISATIONS = [
    # username, legal name, country, registration id, roles, accounts
    ("producer", "Sunny Rooftops Cooperative eG", "DE", "HRB-100001", ["producer", "trader"]),
    ("buyer", "GreenBuy Energy GmbH", "DE", "HRB-200002", ["trader"]),
    ("auditor", "Clear Audit AG", "CH", "CHE-300003", ["auditor"]),
]


# `household` is made by consumers.demo (a person, not an organisation).
DEMO_USERNAMES = ["admin", *(row[0] for row in DEMO_ORGANISATIONS), "household"]


def logins_file() -> Path:
    """Where development keeps the demo logins (`make demo-logins` shows them again): beside
    the SQLite file in use (each federation-demo registry has its own), or under .dev/ named
    after the PostgreSQL database."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return Path(database["NAME"]).with_suffix(".demo-logins")
    return Path(settings.BASE_DIR) / ".dev" / f"{database['NAME']}.demo-logins"


def remember_login(username: str, password: str) -> None:
    path = logins_file()
    lines = [
        line
        for line in (path.read_text().splitlines() if path.is_file() else [])
        if not line.startswith(f"{username} ")
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("".join(f"{line}\n" for line in [*lines, f"{username} / {password}"]))


def _new_user(username: str, stdout, *, superuser: bool = False) -> User:
    password = secrets.token_urlsafe(12)
    if superuser:
        user = User.objects.create_superuser(username=username, password=password)
    else:
        user = services.user_register(username=username, password=password)
    stdout.write(f"  login created: {username} / {password}")
    if settings.DEVELOPMENT:
        remember_login(username, password)
    return user


def new_user(username: str, stdout) -> User:
    """A demo login whose password is printed and kept for `make demo-logins` (for the
    other apps' demo modules)."""
    return _new_user(username, stdout)


@transaction.atomic
def seed(stdout) -> None:
    if User.objects.filter(username="admin").exists():
        stdout.write("Demo participants exist already.")
        return
    stdout.write("Creating demo participants:")
    admin = _new_user("admin", stdout, superuser=True)
    issuing_body = services.issuing_body_bootstrap(
        legal_name="GridProof Issuing Body", country="DE", registration_id="IB-0001", admin=admin
    )
    services.account_open(
        actor=admin, organisation_id=issuing_body.pk, kind=Account.Kind.ISSUANCE, name="Issuance"
    )
    for username, legal_name, country, registration_id, roles in DEMO_ORGANISATIONS:
        user = _new_user(username, stdout)
        organisation = services.organisation_register(
            actor=user,
            legal_name=legal_name,
            country=country,
            registration_id=registration_id,
            roles=roles,
        )
        services.organisation_approve(actor=admin, organisation_id=organisation.pk)
        if Organisation.Role.AUDITOR not in roles:
            services.account_open(
                actor=user, organisation_id=organisation.pk, kind="trading", name="Trading"
            )
            services.account_open(
                actor=user, organisation_id=organisation.pk, kind="retirement", name="Retirement"
            )
