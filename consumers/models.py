"""Households, their sites and meters, consents and the access log, energy communities.

A household is an organisation (see docs/consumers.md): the `Household` row adds the
person's details, which stay out of the ledger and out of public organisation data.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Account, Organisation


class Household(models.Model):
    """A person taking part without a company: the private side of a household organisation."""

    ledger_subject_type = "household"

    organisation = models.OneToOneField(
        Organisation, on_delete=models.PROTECT, related_name="household"
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="households"
    )
    name = models.CharField(max_length=200, help_text="The person's name (private).")
    street = models.CharField(max_length=200)
    postcode = models.CharField(max_length=16)
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"household {self.pk}"


class Site(models.Model):
    """A household's grid connection point, identified by its metering-point id."""

    ledger_subject_type = "site"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for confirmation"
        CONFIRMED = "confirmed", "Confirmed"
        REJECTED = "rejected", "Rejected"

    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=100)
    metering_point_id = models.CharField(
        max_length=18, unique=True, help_text="EAN-18 / GSRN with its GS1 check digit."
    )
    grid_area = models.ForeignKey("assets.GridArea", on_delete=models.PROTECT, related_name="+")
    street = models.CharField(max_length=200)
    postcode = models.CharField(max_length=16)
    city = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"site {self.metering_point_id}"


class SiteMeter(models.Model):
    """An assets meter (with its keys and signed readings) serving a site in one role."""

    class Role(models.TextChoices):
        IMPORT = "import", "Import (consumption)"
        EXPORT = "export", "Export (injection)"
        PRODUCTION = "production", "Production behind the meter"
        STORAGE = "storage", "Storage"
        EV_CHARGER = "ev_charger", "EV charger"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="meters")
    meter = models.OneToOneField("assets.Meter", on_delete=models.PROTECT, related_name="site_link")
    role = models.CharField(max_length=16, choices=Role.choices)
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.site} {self.role} meter {self.meter_id}"


class Consent(models.Model):
    """A household's grant to an organisation to read a site's data: purpose, scope, period."""

    ledger_subject_type = "consent"

    class Resolution(models.TextChoices):
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        MONTHLY = "monthly", "Monthly"

    class Purpose(models.TextChoices):
        SUPPLY = "supply", "Supply and billing"
        FLEXIBILITY = "flexibility", "Aggregation and flexibility"
        COMMUNITY = "community", "Energy community allocation"
        AUDIT = "audit", "Audit"
        ADVICE = "advice", "Energy advice"
        OTHER = "other", "Other"

    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="consents")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="consents")
    grantee = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    meters = models.ManyToManyField(SiteMeter, related_name="consents")
    resolution = models.CharField(max_length=8, choices=Resolution.choices)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        # valid_to last: the check reads the grants in force, not a grantee's expired
        # history on the site, however long it grows.
        indexes = [
            models.Index(fields=["site", "grantee", "valid_to"], name="consent_site_grantee_to")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__gt=F("valid_from")), name="consent_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"consent {self.pk} site {self.site_id} -> org {self.grantee_id}"

    def in_force(self, at) -> bool:
        return self.revoked_at is None and self.valid_from <= at < self.valid_to


class DataAccess(models.Model):
    """One read of a household's data by someone else, granted or refused (the access log).

    Not a ledger event: the ledger is public, and who reads whose meter is personal data.
    """

    class Outcome(models.TextChoices):
        GRANTED = "granted", "Granted"
        REFUSED = "refused", "Refused"

    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="accesses")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="accesses")
    consent = models.ForeignKey(
        Consent, on_delete=models.PROTECT, null=True, blank=True, related_name="accesses"
    )
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    reader_organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()
    what = models.CharField(max_length=32, help_text="readings, allocation, matching …")
    meter_ids = models.JSONField(default=list)
    resolution = models.CharField(max_length=8, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    reason = models.CharField(max_length=64, blank=True, help_text="Error code when refused.")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["household", "-id"], name="data_access_household")]

    def __str__(self) -> str:
        return f"{self.outcome} {self.what} of site {self.site_id} at {self.at:%Y-%m-%d %H:%M}"


class Community(models.Model):
    """An energy community (or a building's shared rooftop) run by an organisation."""

    ledger_subject_type = "community"

    class KeyKind(models.TextChoices):
        STATIC = "static", "Static shares"
        DYNAMIC = "dynamic", "Dynamic, by consumption per interval"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="communities", help_text="Operator."
    )
    name = models.CharField(max_length=200)
    grid_area = models.ForeignKey("assets.GridArea", on_delete=models.PROTECT, related_name="+")
    key_kind = models.CharField(max_length=8, choices=KeyKind.choices, default=KeyKind.DYNAMIC)
    internal_price_minor_per_kwh = models.PositiveIntegerField(
        help_text="Price members pay for allocated energy, in minor units (cents) per kWh."
    )
    currency = models.CharField(max_length=3, default="EUR")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "communities"

    def __str__(self) -> str:
        return self.name


class CommunityMember(models.Model):
    """A member of a community over [joined_at, left_at), with its site and static share."""

    ledger_subject_type = "community_member"

    community = models.ForeignKey(Community, on_delete=models.PROTECT, related_name="members")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="memberships"
    )
    consumption_meter = models.ForeignKey(
        "assets.Meter",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Whose readings are the member's consumption.",
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", help_text="Receives certificates."
    )
    share_numerator = models.PositiveIntegerField(null=True, blank=True)
    share_denominator = models.PositiveIntegerField(null=True, blank=True)
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(left_at__isnull=True) | Q(left_at__gt=F("joined_at")),
                name="community_member_period_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation} in {self.community}"


class CommunityDevice(models.Model):
    """A production device whose output the community shares."""

    community = models.ForeignKey(Community, on_delete=models.PROTECT, related_name="devices")
    device = models.OneToOneField(
        "assets.Device", on_delete=models.PROTECT, related_name="community_link"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.device} shared by {self.community}"


class GatewayDeadLetter(models.Model):
    """An MQTT message the meter gateway could not ingest, kept for an operator to inspect.

    An operational record, not registry state: nothing was changed, so no ledger event.
    """

    topic = models.CharField(max_length=300)
    payload = models.BinaryField(help_text="The message as received (cut at 64 KiB).")
    reason = models.CharField(max_length=64, help_text="Error code: wrong_topic, garbage, …")
    detail = models.TextField(blank=True)
    meter_serial = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.reason} on {self.topic}"


class CommunityDistribution(models.Model):
    """One hour of a community's shared certificates moved to its members, once only.

    `issued_wh` is what the operator held of the shared devices' certificates for the hour;
    `member_wh` maps member id to the Wh delivered; the rest (`kept_wh`, the exported
    part) stays with the operator.
    """

    ledger_subject_type = "community_distribution"

    community = models.ForeignKey(Community, on_delete=models.PROTECT, related_name="distributions")
    hour = models.DateTimeField(help_text="Start of the distributed hour (UTC).")
    issued_wh = models.BigIntegerField()
    distributed_wh = models.BigIntegerField()
    kept_wh = models.BigIntegerField()
    member_wh = models.JSONField(default=dict, help_text="Member id -> Wh delivered.")
    distributed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["community", "hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["community", "hour"], name="community_distribution_once_per_hour"
            ),
            models.CheckConstraint(
                condition=Q(issued_wh=F("distributed_wh") + F("kept_wh"))
                & Q(distributed_wh__gte=0)
                & Q(kept_wh__gte=0),
                name="community_distribution_conserves",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.community} {self.hour:%Y-%m-%d %H:00}"
