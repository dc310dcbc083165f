"""Certificates: issuance, bundles of Wh units, transfers, retirements, withdrawals.

A unit is 1 Wh from one device. Units are numbered per device in issuance order
(`DeviceUnitCounter`), so (device, unit number) names one Wh forever. A `Bundle` holds
the contiguous range [unit_start, unit_end) of one production period; a bundle's range
never changes: moving or retiring part of it marks it SPLIT and creates two children
whose ranges partition it. Bundle rows are the hot, large table (one per device-hour and
owner for hourly certificates), so they stay narrow: the attributes shared by one
issuance live on `Issuance`.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Account, Organisation


class DeviceUnitCounter(models.Model):
    """The next unused unit number of a device; its row is also the device's issuance lock."""

    device = models.OneToOneField(
        "assets.Device", on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    next_unit = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"device {self.device_id}: next unit {self.next_unit}"


class IssuanceRequest(models.Model):
    """A producer's request for certificates for one device and period."""

    ledger_subject_type = "issuance_request"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending approval"
        APPROVED = "approved", "Approved and issued"
        REJECTED = "rejected", "Rejected"

    class Granularity(models.TextChoices):
        HOUR = "hour", "Hourly certificates"
        PERIOD = "period", "One certificate period for the whole range"

    device = models.ForeignKey("assets.Device", on_delete=models.PROTECT, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    granularity = models.CharField(
        max_length=8, choices=Granularity.choices, default=Granularity.HOUR
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "id"], name="cert_issreq_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="cert_issreq_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"issuance request #{self.pk} ({self.status})"


class Issuance(models.Model):
    """One issuance run for a device, with the certificate attributes all its bundles share."""

    ledger_subject_type = "issuance"

    device = models.ForeignKey("assets.Device", on_delete=models.PROTECT, related_name="+")
    request = models.OneToOneField(
        IssuanceRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="issuance",
    )
    issuing_body = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField()
    granularity = models.CharField(max_length=8, choices=IssuanceRequest.Granularity.choices)
    period_start = models.DateTimeField(help_text="Start of the first issued period (UTC).")
    period_end = models.DateTimeField(help_text="End of the last issued period (UTC).")
    unit_start = models.BigIntegerField()
    unit_end = models.BigIntegerField()
    volume_wh = models.BigIntegerField()
    # The device's attributes as they were at issuance: certificates never change.
    device_name = models.CharField(max_length=200)
    technology_code = models.CharField(max_length=32)
    energy_source_code = models.CharField(max_length=32)
    grid_area = models.ForeignKey("assets.GridArea", on_delete=models.PROTECT, related_name="+")
    grid_area_code = models.CharField(max_length=32)
    country = models.CharField(max_length=2)
    capacity_w = models.BigIntegerField(null=True, blank=True)
    commissioning_date = models.DateField(null=True, blank=True)
    support = models.CharField(max_length=64, blank=True, help_text="Public support received.")
    emission_factor_g_per_kwh = models.DecimalField(
        max_digits=10, decimal_places=3, null=True, blank=True
    )
    is_storage = models.BooleanField(default=False)
    expiry_months = models.PositiveSmallIntegerField(null=True, blank=True)
    imported_from = models.CharField(
        max_length=255,
        blank=True,
        help_text="The registry these certificates were imported from; empty: issued here.",
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["device", "period_start"], name="cert_issuance_device_period"),
            models.Index(fields=["technology_code"], name="cert_issuance_technology"),
            models.Index(fields=["grid_area_code"], name="cert_issuance_grid_area"),
            models.Index(fields=["country"], name="cert_issuance_country"),
        ]

    def __str__(self) -> str:
        return f"issuance #{self.pk} device {self.device_id} {self.period_start:%Y-%m-%d %H:%M}"


class IssuedPeriod(models.Model):
    """A production period of a device that has certificates; a device's periods never overlap.

    PostgreSQL enforces it with an exclusion constraint (migration 0002); the issuance
    service checks it on every database. A withdrawn period frees its time span for a
    corrected re-issue (with new unit numbers).
    """

    device = models.ForeignKey(
        "assets.Device", on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    issuance = models.ForeignKey(Issuance, on_delete=models.PROTECT, related_name="periods")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    unit_start = models.BigIntegerField()
    unit_end = models.BigIntegerField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["device", "period_start"], name="cert_period_device_start"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "period_start"],
                condition=Q(withdrawn_at__isnull=True),
                name="cert_period_unique_start",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="cert_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"device {self.device_id} {self.period_start:%Y-%m-%d %H:%M}"


class Bundle(models.Model):
    """Units [unit_start, unit_end) of one device for one production period, held by one account."""

    ledger_subject_type = "bundle"

    class Status(models.IntegerChoices):
        ACTIVE = 1, "active"
        RESERVED = 2, "reserved"
        SPLIT = 3, "split"
        RETIRED = 4, "retired"
        EXPIRED = 5, "expired"
        WITHDRAWN = 6, "withdrawn"
        EXPORTED = 7, "exported"
        # Cancelled on the way into a battery (EnergyTag storage rules): final, like a
        # retirement, but no claim; the discharge is issued as storage certificates.
        STORED = 8, "stored"

    device = models.ForeignKey(
        "assets.Device", on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    issuance = models.ForeignKey(Issuance, on_delete=models.PROTECT, related_name="bundles")
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, db_index=False, related_name="bundles"
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
        related_name="children",
    )
    unit_start = models.BigIntegerField()
    unit_end = models.BigIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    expires_on = models.DateField(
        null=True, blank=True, help_text="First day (UTC) on which the bundle is expired."
    )
    status = models.PositiveSmallIntegerField(choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["account", "status"], name="cert_bundle_account_status"),
            models.Index(fields=["device", "unit_start"], name="cert_bundle_device_unit"),
            models.Index(fields=["period_start"], name="cert_bundle_period"),
            models.Index(
                fields=["parent"], condition=Q(parent__isnull=False), name="cert_bundle_parent"
            ),
            models.Index(
                fields=["expires_on"],
                condition=Q(status=1, expires_on__isnull=False),
                name="cert_bundle_expiry_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_end__gt=F("unit_start")) & Q(unit_start__gte=0),
                name="cert_bundle_units",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="cert_bundle_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"bundle #{self.pk} device {self.device_id} [{self.unit_start}, {self.unit_end})"

    @property
    def volume_wh(self) -> int:
        return self.unit_end - self.unit_start

    @property
    def status_name(self) -> str:
        return self.Status(self.status).label


class StorageOrigin(models.Model):
    """Where the units [unit_start, unit_end) of a storage issuance came from: the
    certificate cancelled when that energy charged the battery (EnergyTag storage rules).

    Keyed by unit range, so every bundle split off a storage bundle finds its origin.
    """

    issuance = models.ForeignKey(Issuance, on_delete=models.PROTECT, related_name="origins")
    device = models.ForeignKey(
        "assets.Device", on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    unit_start = models.BigIntegerField()
    unit_end = models.BigIntegerField()
    charged_bundle = models.ForeignKey(
        Bundle, on_delete=models.PROTECT, related_name="+", help_text="The cancelled bundle."
    )
    origin_device = models.ForeignKey("assets.Device", on_delete=models.PROTECT, related_name="+")
    origin_technology_code = models.CharField(max_length=32)
    origin_energy_source_code = models.CharField(max_length=32)
    origin_period_start = models.DateTimeField()
    origin_period_end = models.DateTimeField()
    charged_at = models.DateTimeField(help_text="Start of the hour the battery charged.")
    efficiency_ppm = models.PositiveIntegerField()

    class Meta:
        ordering = ["device", "unit_start"]
        indexes = [models.Index(fields=["device", "unit_start"], name="cert_storage_origin_unit")]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_end__gt=F("unit_start")), name="cert_storage_origin_units"
            ),
            models.CheckConstraint(
                condition=Q(efficiency_ppm__gte=1, efficiency_ppm__lte=1_000_000),
                name="cert_storage_origin_efficiency",
            ),
        ]

    def __str__(self) -> str:
        return f"storage units [{self.unit_start}, {self.unit_end}) of device {self.device_id}"


class TransferPolicy(models.Model):
    """Whether an organisation accepts incoming transfers from other organisations by hand."""

    ledger_subject_type = "organisation"

    organisation = models.OneToOneField(
        Organisation, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    require_acceptance = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return (
            f"{self.organisation_id}: acceptance {'required' if self.require_acceptance else 'off'}"
        )


class Transfer(models.Model):
    """A move of one bundle (whole, or the part split off for it) to another account."""

    ledger_subject_type = "transfer"

    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        PENDING = "pending", "Waiting for the receiver"
        ACCEPTED = "accepted", "Accepted by the receiver"
        REJECTED = "rejected", "Rejected by the receiver"
        WITHDRAWN = "withdrawn", "Withdrawn by the sender"
        CANCELLED = "cancelled", "Cancelled (certificates withdrawn)"

    bundle = models.ForeignKey(
        Bundle,
        on_delete=models.PROTECT,
        db_index=False,  # the (bundle, id) index below serves it
        related_name="transfers",
        help_text="What moved.",
    )
    source = models.ForeignKey(
        Bundle,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="+",
        help_text="Where the units were taken from: `bundle` itself, or its split parent.",
    )
    from_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    to_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    volume_wh = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(volume_wh__gt=0), name="cert_transfer_volume"),
        ]
        indexes = [
            # A bundle's first transfer (where a bundle moved whole was issued) is one index
            # probe: on `bundle` alone PostgreSQL answered `ORDER BY id LIMIT 1` by walking
            # the primary key through every transfer ever made.
            models.Index(fields=["bundle", "id"], name="cert_transfer_bundle_id"),
        ]

    def __str__(self) -> str:
        return f"transfer #{self.pk} bundle {self.bundle_id} ({self.status})"


class Retirement(models.Model):
    """A final claim on certificates for a beneficiary; its statement is public at `public_id`."""

    ledger_subject_type = "retirement"

    class Purpose(models.TextChoices):
        DISCLOSURE = "disclosure", "Disclosure (fuel mix)"
        SCOPE2_MARKET_BASED = "scope2_market_based", "Scope 2 market-based"
        HOURLY_MATCHING = "hourly_matching", "Hourly (24/7) matching"
        VOLUNTARY = "voluntary", "Voluntary claim"
        SUPPORT_SCHEME = "support_scheme", "Support scheme"
        OTHER = "other", "Other"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    retired_at = models.DateTimeField()
    volume_wh = models.BigIntegerField()
    beneficiary_name = models.CharField(max_length=200)
    beneficiary_country = models.CharField(max_length=2)
    consumption_start = models.DateTimeField()
    consumption_end = models.DateTimeField()
    location = models.CharField(max_length=200, blank=True)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    claim_salt = models.CharField(
        max_length=32, help_text="Random hex; with the claim it opens the ledger's commitment."
    )
    claim_commitment = models.CharField(
        max_length=64, help_text="SHA-256 of the canonical claim (names stay out of the ledger)."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"retirement {self.public_id}"


class RetirementItem(models.Model):
    """One bundle retired by a retirement."""

    retirement = models.ForeignKey(Retirement, on_delete=models.PROTECT, related_name="items")
    bundle = models.OneToOneField(Bundle, on_delete=models.PROTECT, related_name="retirement_item")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.retirement_id}: bundle {self.bundle_id}"


class Withdrawal(models.Model):
    """The issuing body's withdrawal of certificates issued in error, with its reason."""

    ledger_subject_type = "withdrawal"

    reason = models.TextField()
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    withdrawn_at = models.DateTimeField()
    volume_wh = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"withdrawal #{self.pk}"


class WithdrawalItem(models.Model):
    """A bundle hit by a withdrawal; a retired bundle keeps its status and is flagged here."""

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.PROTECT, related_name="items")
    bundle = models.OneToOneField(Bundle, on_delete=models.PROTECT, related_name="withdrawal_item")
    previous_status = models.PositiveSmallIntegerField(choices=Bundle.Status.choices)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.withdrawal_id}: bundle {self.bundle_id}"


class ForeignDevice(models.Model):
    """The local stand-in of a device registered at another registry.

    Imported units keep their identity: unit n of device d at origin o is stored as unit n
    of the local device row mapped to (o, d), so the same Wh has the same number in every
    registry it travels through, and an overlap check finds it twice.
    """

    device = models.OneToOneField(
        "assets.Device", on_delete=models.PROTECT, primary_key=True, related_name="foreign"
    )
    origin = models.CharField(max_length=255, help_text="The registry where the device is.")
    origin_device_id = models.BigIntegerField(help_text="The device's id at that registry.")

    class Meta:
        ordering = ["origin", "origin_device_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["origin", "origin_device_id"], name="cert_foreign_device_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.origin} device {self.origin_device_id}"


class CertificateExport(models.Model):
    """Certificates sent to an account at a partner registry; their units never move here again.

    Delivered by a task once the `certificate.exported` entry is in an anchored checkpoint;
    settled by the importing registry's signed receipt: imported (final) or rejected (the
    units come back to the exporting account).
    """

    ledger_subject_type = "certificate_export"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for delivery"
        IMPORTED = "imported", "Imported by the destination"
        RETURNED = "returned", "Refused by the destination and returned"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    bundle = models.OneToOneField(Bundle, on_delete=models.PROTECT, related_name="export")
    source = models.ForeignKey(Bundle, on_delete=models.PROTECT, db_index=False, related_name="+")
    from_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(
        "federation.Peer", on_delete=models.PROTECT, related_name="certificate_exports"
    )
    destination_account = models.CharField(
        max_length=64, help_text="The receiving account's number at the destination."
    )
    volume_wh = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()
    export_seq = models.BigIntegerField(
        null=True, blank=True, help_text="Sequence number of the certificate.exported entry."
    )
    delivery_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    receipt = models.TextField(blank=True, help_text="The destination's signed receipt.")
    destination_reference = models.JSONField(
        default=dict, blank=True, help_text="The import at the destination, from its receipt."
    )
    reason = models.CharField(max_length=64, blank=True, help_text="Refusal code, if returned.")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="cert_export_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.public_id} to {self.destination_id} ({self.status})"


class CertificateImport(models.Model):
    """Certificates received from a partner registry's export: imported, or refused.

    One row per (origin, export entry), inserted first in the import's transaction, so the
    same export can never be imported twice, even by two requests at once.
    """

    ledger_subject_type = "certificate_import"

    class Status(models.TextChoices):
        IMPORTED = "imported", "Imported"
        REJECTED = "rejected", "Refused (returned to the exporting registry)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    origin = models.CharField(max_length=255, help_text="The exporting registry.")
    export_seq = models.BigIntegerField(help_text="Its certificate.exported entry.")
    export_leaf_hash = models.CharField(max_length=64, help_text="Hex RFC 9162 leaf hash.")
    export_data = models.JSONField(help_text="The export event's data.")
    checkpoint = models.TextField(help_text="The anchored checkpoint the proofs are against.")
    provenance = models.JSONField(
        default=list, help_text="Verified entries of the exporter's log about these units."
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    bundle = models.OneToOneField(
        Bundle, on_delete=models.PROTECT, null=True, blank=True, related_name="imported_by"
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    receipt = models.TextField(help_text="The signed receipt returned to the exporter.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["origin", "export_seq"], name="cert_import_once_per_export"
            ),
        ]

    def __str__(self) -> str:
        return f"import {self.public_id} from {self.origin} #{self.export_seq} ({self.status})"
