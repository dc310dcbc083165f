from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    """A person who logs in; acts for organisations through memberships."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            # "Alice" and "alice" are one login: the database enforces it even when two
            # registrations race past the service's check.
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
        ]


class Organisation(models.Model):
    """A registry participant: producer, trader, issuing body or auditor."""

    ledger_subject_type = "organisation"

    class Role(models.TextChoices):
        PRODUCER = "producer", "Producer"
        TRADER = "trader", "Trader"
        ISSUING_BODY = "issuing_body", "Issuing body"
        AUDITOR = "auditor", "Auditor"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending approval"
        APPROVED = "approved", "Approved"
        SUSPENDED = "suspended", "Suspended"

    legal_name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    registration_id = models.CharField(max_length=64, help_text="Company or tax registration id.")
    is_producer = models.BooleanField(default=False)
    is_trader = models.BooleanField(default=False)
    is_issuing_body = models.BooleanField(default=False)
    is_auditor = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "registration_id"], name="organisation_unique_registration"
            ),
        ]

    def __str__(self) -> str:
        return self.legal_name

    @property
    def roles(self) -> list[str]:
        return [role.value for role in self.Role if getattr(self, f"is_{role.value}")]

    @property
    def is_approved(self) -> bool:
        return self.status == self.Status.APPROVED


class Membership(models.Model):
    """A user's role inside one organisation."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Administrator"
        OPERATOR = "operator", "Operator"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OPERATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organisation} ({self.role})"


class Account(models.Model):
    """A certificate-holding account of an organisation (EECS / I-REC style)."""

    ledger_subject_type = "account"

    class Kind(models.TextChoices):
        TRADING = "trading", "Trading"
        ISSUANCE = "issuance", "Issuance"
        RETIREMENT = "retirement", "Retirement"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="accounts"
    )
    number = models.CharField(max_length=32, unique=True, help_text="Public account number.")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TRADING)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class ApiToken(models.Model):
    """A revocable API token; only its SHA-256 is stored, the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="Updated at most once a minute, not on every request."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="The token stops working then; empty: never."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"
