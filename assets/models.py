from fractions import Fraction

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Account, Organisation


class GridArea(models.Model):
    """A bidding zone or control area (EIC code) with its emission factor and expiry policy."""

    ledger_subject_type = "grid_area"

    code = models.CharField(
        max_length=16, unique=True, help_text="EIC code, e.g. 10Y1001A1001A82H."
    )
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    time_zone = models.CharField(max_length=64, help_text="IANA time zone, e.g. Europe/Berlin.")
    emission_factor_g_per_kwh = models.DecimalField(
        max_digits=9, decimal_places=3, help_text="Default emission factor in gCO2e/kWh."
    )
    expiry_months = models.PositiveSmallIntegerField(
        default=12, help_text="Certificates expire this many months after production end."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(emission_factor_g_per_kwh__gte=0),
                name="grid_area_emission_factor_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(expiry_months__gte=1), name="grid_area_expiry_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Device(models.Model):
    """A production device (plant or storage) that makes the energy certificates are issued for."""

    ledger_subject_type = "device"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted for approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        DECOMMISSIONED = "decommissioned", "Decommissioned"
        FOREIGN = "foreign", "Registered at another registry (imported certificates)"

    class Support(models.TextChoices):
        NONE = "none", "No public support"
        INVESTMENT = "investment", "Investment support"
        PRODUCTION = "production", "Production support"
        OTHER = "other", "Other support"

    class IssuancePolicy(models.TextChoices):
        MANUAL = "manual", "On request"
        AUTOMATIC_HOURLY = "automatic_hourly", "Automatic, hourly"

    class Interval(models.IntegerChoices):
        QUARTER_HOUR = 15, "15 minutes"
        HOUR = 60, "60 minutes"

    name = models.CharField(max_length=200)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="devices", help_text="Registrant."
    )
    grid_area = models.ForeignKey(GridArea, on_delete=models.PROTECT, related_name="devices")
    technology_code = models.CharField(max_length=7, help_text="EECS technology code, T######.")
    energy_source_code = models.CharField(max_length=9, help_text="EECS energy source, F########.")
    capacity_w = models.BigIntegerField(help_text="Installed capacity in W.")
    commissioning_date = models.DateField()
    latitude = models.DecimalField(max_digits=9, decimal_places=6)
    longitude = models.DecimalField(max_digits=9, decimal_places=6)
    support = models.CharField(max_length=16, choices=Support.choices, default=Support.NONE)
    is_storage = models.BooleanField(default=False)
    storage_capacity_wh = models.BigIntegerField(null=True, blank=True)
    round_trip_efficiency = models.DecimalField(
        max_digits=5, decimal_places=4, null=True, blank=True, help_text="0..1, storage only."
    )
    interval_minutes = models.PositiveSmallIntegerField(
        choices=Interval.choices, default=Interval.HOUR
    )
    require_signed_readings = models.BooleanField(default=False)
    issuance_policy = models.CharField(
        max_length=24, choices=IssuancePolicy.choices, default=IssuancePolicy.MANUAL
    )
    issuance_requires_approval = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "grid_area"], name="device_status_grid_area")]
        constraints = [
            models.CheckConstraint(condition=Q(capacity_w__gt=0), name="device_capacity_gt_0"),
            models.CheckConstraint(
                condition=Q(latitude__gte=-90, latitude__lte=90), name="device_latitude_range"
            ),
            models.CheckConstraint(
                condition=Q(longitude__gte=-180, longitude__lte=180), name="device_longitude_range"
            ),
            models.CheckConstraint(
                condition=Q(interval_minutes__in=[15, 60]), name="device_interval_15_or_60"
            ),
            models.CheckConstraint(
                condition=Q(is_storage=False)
                | Q(
                    storage_capacity_wh__gt=0,
                    round_trip_efficiency__gt=0,
                    round_trip_efficiency__lte=1,
                ),
                name="device_storage_fields",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def can_issue(self) -> bool:
        """Readings are accepted and certificates issued only for approved or active devices."""
        return self.status in (self.Status.APPROVED, self.Status.ACTIVE)


class DeviceOwner(models.Model):
    """A co-owner's share of a device and the account that receives its certificates."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="owners")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="device_shares"
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="device_shares")
    share_numerator = models.PositiveIntegerField()
    share_denominator = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "organisation"], name="device_owner_unique_organisation"
            ),
            models.CheckConstraint(
                condition=Q(share_numerator__gt=0)
                & Q(share_denominator__gt=0)
                & Q(share_numerator__lte=F("share_denominator")),
                name="device_owner_share_in_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation} {self.share} of {self.device}"

    @property
    def share(self) -> Fraction:
        return Fraction(self.share_numerator, self.share_denominator)


class Meter(models.Model):
    """A meter measuring a device's generation, consumption or storage discharge."""

    ledger_subject_type = "meter"

    class Kind(models.TextChoices):
        GENERATION = "generation", "Generation"
        CONSUMPTION = "consumption", "Consumption"
        STORAGE = "storage", "Storage (discharge)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REMOVED = "removed", "Removed"

    serial = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.GENERATION)
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="meters")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    installed_at = models.DateTimeField(
        null=True, blank=True, help_text="No readings are accepted before this instant."
    )
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="No readings are accepted after this instant."
    )
    replaced_by = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaces"
    )
    counter_wh = models.BigIntegerField(
        null=True, blank=True, help_text="Last counter value (cumulative readings)."
    )
    counter_at = models.DateTimeField(null=True, blank=True, help_text="Time of counter_wh.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.serial


class MeterKey(models.Model):
    """An Ed25519 public key of a meter, valid in [valid_from, valid_to)."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="keys")
    public_key = models.CharField(max_length=44, help_text="Base64 of the 32-byte Ed25519 key.")
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["meter_id", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["meter", "valid_from"], name="meter_key_unique_from"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=F("valid_from")),
                name="meter_key_valid_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter} key from {self.valid_from:%Y-%m-%d %H:%M}"


class ReadingBatch(models.Model):
    """One submission of readings, recorded in the ledger as one event with its Merkle root."""

    ledger_subject_type = "reading_batch"

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        HELD = "held", "Held for review"
        REJECTED = "rejected", "Rejected on review"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="reading_batches"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    device = models.ForeignKey(
        Device,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reading_batches",
        help_text="Set when every reading of the batch is of this device.",
    )
    meter = models.ForeignKey(
        Meter,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reading_batches",
        help_text="Set when every reading of the batch is of this meter.",
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    size = models.PositiveIntegerField(help_text="Number of readings (Merkle tree size).")
    total_wh = models.BigIntegerField(default=0)
    first_start = models.DateTimeField(null=True, blank=True)
    last_end = models.DateTimeField(null=True, blank=True)
    merkle_root = models.CharField(max_length=64, help_text="RFC 9162 root, hex.")
    review_reasons = models.JSONField(
        default=list, blank=True, help_text='Why it is held: [{"code", "rows"}].'
    )
    counter_updates = models.JSONField(
        default=dict, blank=True, help_text="Meter counter states this batch set."
    )
    review_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    ledger_pending_event_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "reading batches"
        indexes = [models.Index(fields=["status", "id"], name="reading_batch_status")]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.status}, {self.size} readings)"

    @property
    def ledger_subject(self) -> str:
        return f"{self.ledger_subject_type}:{self.pk}"


class Reading(models.Model):
    """An accepted interval reading: wh measured by a meter over [start, end)."""

    device = models.ForeignKey(
        Device, on_delete=models.PROTECT, related_name="readings", db_index=False
    )
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="readings", db_index=False
    )
    batch = models.ForeignKey(
        ReadingBatch, on_delete=models.PROTECT, related_name="readings", db_index=False
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    wh = models.BigIntegerField()
    signature = models.BinaryField(null=True, blank=True, help_text="Ed25519, 64 bytes.")
    is_signed = models.BooleanField(default=False)
    index_in_batch = models.PositiveIntegerField()
    counter_wh = models.BigIntegerField(
        null=True, blank=True, help_text="Counter value at `end` when derived from a counter."
    )
    issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start", "meter_id"]
        indexes = [models.Index(fields=["device", "start"], name="reading_device_start")]
        constraints = [
            models.UniqueConstraint(fields=["meter", "start"], name="reading_unique_meter_start"),
            models.UniqueConstraint(
                fields=["batch", "index_in_batch"], name="reading_unique_batch_index"
            ),
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="reading_end_after_start"),
            models.CheckConstraint(condition=Q(wh__gte=0), name="reading_wh_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.start:%Y-%m-%d %H:%M} {self.wh} Wh"


class DeviceGenerationDay(models.Model):
    """Accepted Wh per device and UTC day (by reading start): what the charts read.

    Kept by `assets.storage` in the transaction that accepts the readings (readings are
    append-only, so a day's sum only grows); summing a year of a fleet's hourly readings
    per request cost the producer's monthly chart ~110 ms (benchmarks/README.md).
    """

    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    wh = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "day"], name="generation_day_unique"),
            models.CheckConstraint(condition=Q(wh__gte=0), name="generation_day_wh_gte_0"),
        ]

    def __str__(self) -> str:
        return f"device {self.device_id} {self.day}: {self.wh} Wh"


class PendingReading(models.Model):
    """A reading of a held batch, waiting for the issuing body's review (not yet a Reading)."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+", db_index=False)
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+", db_index=False)
    batch = models.ForeignKey(
        ReadingBatch, on_delete=models.CASCADE, related_name="pending_readings", db_index=False
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    wh = models.BigIntegerField()
    signature = models.BinaryField(null=True, blank=True)
    is_signed = models.BooleanField(default=False)
    index_in_batch = models.PositiveIntegerField()
    counter_wh = models.BigIntegerField(null=True, blank=True)
    flags = models.CharField(max_length=64, blank=True, help_text="Review reasons of this row.")

    class Meta:
        ordering = ["batch_id", "index_in_batch"]
        indexes = [models.Index(fields=["device", "start"], name="pending_reading_device_start")]
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "start"], name="pending_reading_unique_meter_start"
            ),
            models.UniqueConstraint(
                fields=["batch", "index_in_batch"], name="pending_reading_unique_batch_index"
            ),
        ]

    def __str__(self) -> str:
        return f"held {self.meter_id} {self.start:%Y-%m-%d %H:%M} {self.wh} Wh"
