"""Charging stations, driver tokens, tariffs, sessions with their meter samples, bills and
renewable receipts. Every write goes through `charging.services` (one ledger event each)."""

from django.db import models
from django.db.models import F, Q

from accounts.models import Account, Organisation


class Tariff(models.Model):
    """An OCPI 2.2.1 tariff of a charge point operator: energy, time and flat components."""

    ledger_subject_type = "charging_tariff"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="charging_tariffs"
    )
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. EUR.")
    elements = models.JSONField(help_text="OCPI tariff elements, validated (charging.tariffs).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"tariff {self.pk} ({self.currency})"


class ChargingStation(models.Model):
    """A charging station: a device with its charger meter (a consumption meter) and a tariff."""

    ledger_subject_type = "charging_station"

    device = models.OneToOneField(
        "assets.Device", on_delete=models.PROTECT, related_name="charging_station"
    )
    meter = models.OneToOneField(
        "assets.Meter", on_delete=models.PROTECT, related_name="charging_station"
    )
    evse_id = models.CharField(max_length=48, unique=True, help_text="EVSE id, e.g. DE*GPR*E1.")
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="stations")
    ocmf_public_key = models.CharField(
        max_length=400, blank=True, help_text="Hex DER public key of the OCMF signing meter."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.evse_id


class DriverToken(models.Model):
    """An OCPP idToken (RFID card, app user, eMAID) and the organisation it bills to."""

    ledger_subject_type = "charging_token"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="charging_tokens"
    )
    id_token = models.CharField(max_length=36)
    type = models.CharField(max_length=20, help_text="OCPP 2.0.1 IdTokenEnumType.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["id_token", "type"], name="charging_token_unique")
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.id_token}"


class ChargingSession(models.Model):
    """One transaction at a station, from its Started event (or OCMF begin) to its end."""

    ledger_subject_type = "charging_session"

    class Source(models.TextChoices):
        OCPP = "ocpp", "OCPP 2.0.1 TransactionEvent"
        OCMF = "ocmf", "OCMF signed meter data"

    class Status(models.TextChoices):
        ACTIVE = "active", "Charging"
        BILLED = "billed", "Ended and billed"

    station = models.ForeignKey(ChargingStation, on_delete=models.PROTECT, related_name="sessions")
    transaction_id = models.CharField(max_length=64)
    source = models.CharField(max_length=8, choices=Source.choices)
    token = models.ForeignKey(DriverToken, on_delete=models.PROTECT, related_name="sessions")
    driver_organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="charging_sessions"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    meter_start_wh = models.BigIntegerField()
    meter_last_wh = models.BigIntegerField()
    last_seq_no = models.PositiveIntegerField()
    last_event_at = models.DateTimeField()
    ocmf = models.TextField(blank=True, help_text="The signed OCMF record, kept as evidence.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "transaction_id"], name="charging_session_unique_transaction"
            ),
            models.CheckConstraint(
                condition=Q(meter_last_wh__gte=F("meter_start_wh")),
                name="charging_session_meter_not_decreasing",
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.transaction_id}"


class SessionMessage(models.Model):
    """One received message of a session (its seqNo), so a repeated seqNo is refused."""

    session = models.ForeignKey(ChargingSession, on_delete=models.CASCADE, related_name="messages")
    seq_no = models.PositiveIntegerField()
    event_type = models.CharField(max_length=8)
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["session_id", "seq_no"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "seq_no"], name="charging_message_unique_seq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.seq_no}"


class MeterSample(models.Model):
    """One meter value of a session (Energy.Active.Import.Register), in Wh."""

    session = models.ForeignKey(ChargingSession, on_delete=models.CASCADE, related_name="samples")
    seq_no = models.PositiveIntegerField(help_text="seqNo of the message that carried it.")
    at = models.DateTimeField()
    meter_wh = models.BigIntegerField()

    class Meta:
        ordering = ["session_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.meter_wh} Wh at {self.at:%Y-%m-%d %H:%M}"


class Bill(models.Model):
    """The priced session: integer minor units per dimension and the hourly periods."""

    ledger_subject_type = "charging_bill"

    class Settlement(models.TextChoices):
        PENDING = "pending", "Awaiting settlement (the market's accounts)"
        SETTLED = "settled", "Settled"

    session = models.OneToOneField(ChargingSession, on_delete=models.PROTECT, related_name="bill")
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="bills")
    billed_organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="charging_bills"
    )
    currency = models.CharField(max_length=3)
    energy_wh = models.BigIntegerField()
    charging_seconds = models.BigIntegerField()
    energy_minor = models.BigIntegerField()
    time_minor = models.BigIntegerField()
    flat_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()
    periods = models.JSONField(help_text="Hourly periods: start, end, energy_wh, seconds, costs.")
    settlement = models.CharField(
        max_length=8, choices=Settlement.choices, default=Settlement.PENDING
    )
    settlement_reference = models.CharField(
        max_length=100, blank=True, help_text="The settler's record (the market's journal entry)."
    )
    settlement_reason = models.CharField(
        max_length=64, blank=True, help_text="Why the last attempt left it pending (a code)."
    )
    settled_at = models.DateTimeField(null=True, blank=True)
    billed_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(energy_minor__gte=0, time_minor__gte=0, flat_minor__gte=0)
                & Q(total_minor=F("energy_minor") + F("time_minor") + F("flat_minor")),
                name="charging_bill_non_negative_sum",
            ),
        ]

    def __str__(self) -> str:
        return f"bill {self.pk}: {self.total_minor} {self.currency} minor units"

    # What a settler reads (the market's payment protocol): who pays whom, how much.
    @property
    def payer_id(self) -> int:
        return self.billed_organisation_id

    @property
    def payee_id(self) -> int:
        """The station owner's organisation."""
        return self.session.station.device.organisation_id

    @property
    def amount_minor(self) -> int:
        return self.total_minor


class Receipt(models.Model):
    """A session's renewable receipt: kWh, price, and the retirements that prove its share."""

    ledger_subject_type = "charging_receipt"

    session = models.OneToOneField(
        ChargingSession, on_delete=models.PROTECT, related_name="receipt"
    )
    bill = models.OneToOneField(Bill, on_delete=models.PROTECT, related_name="receipt")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    energy_wh = models.BigIntegerField()
    renewable_wh = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(renewable_wh__gte=0) & Q(renewable_wh__lte=F("energy_wh")),
                name="charging_receipt_share_in_0_1",
            )
        ]

    def __str__(self) -> str:
        return f"receipt {self.pk}: {self.renewable_wh}/{self.energy_wh} Wh renewable"


class ReceiptHour(models.Model):
    """One hour of a receipt: the session's energy, what was matched and its statement."""

    receipt = models.ForeignKey(Receipt, on_delete=models.CASCADE, related_name="hours")
    hour_start = models.DateTimeField()
    energy_wh = models.BigIntegerField()
    matched_wh = models.BigIntegerField()
    retirement = models.OneToOneField(
        "certificates.Retirement", on_delete=models.PROTECT, null=True, related_name="+"
    )

    class Meta:
        ordering = ["receipt_id", "hour_start"]

    def __str__(self) -> str:
        return f"{self.hour_start:%Y-%m-%d %H}h: {self.matched_wh}/{self.energy_wh} Wh"
