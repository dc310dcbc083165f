"""Contracts: agreements between organisations that the registry carries out itself.

A contract's terms are stored as given and hashed in canonical form (RFC 8785, the
ledger's encoder); every party agrees to one version of them. Executions are the
contract's acts, one per (contract, trigger), never two.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Account, Organisation


class OrganisationKey(models.Model):
    """An Ed25519 public key an organisation registered to sign its agreements."""

    ledger_subject_type = "contract_key"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    public_key = models.CharField(max_length=64, help_text="Raw 32-byte key, hex.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "public_key"], name="contracts_key_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id}:{self.name}"


class Contract(models.Model):
    """An agreement of a kind, with its parties' terms, a validity window and a status."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        TERMINATED = "terminated"
        EXPIRED = "expired"

    class OnFailure(models.TextChoices):
        PARK = "park"  # a failed execution waits for a party to retry it
        RETRY = "retry"  # retried by the periodic task, up to max_attempts, then parked

    kind = models.CharField(max_length=40)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1, help_text="Version of the terms in force.")
    terms = models.JSONField(help_text="Validated terms of the version in force (or drafted).")
    terms_sha256 = models.CharField(max_length=64)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    on_failure = models.CharField(max_length=8, choices=OnFailure.choices, default=OnFailure.PARK)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    # The proposal under agreement: an amendment or a termination (version + 1).
    proposal = models.JSONField(null=True, blank=True)
    # Denormalised from the terms, for the triggers and the overlap rule.
    device = models.ForeignKey(
        "assets.Device", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    share_bp = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "kind"], name="contracts_status_kind"),
            models.Index(fields=["device", "status"], name="contracts_device_status"),
            models.Index(fields=["source_account", "status"], name="contracts_source_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(end_at__gt=models.F("start_at")), name="c_window"),
            models.CheckConstraint(
                condition=Q(share_bp__isnull=True) | Q(share_bp__gte=1, share_bp__lte=10_000),
                name="contracts_share_bp_range",
            ),
        ]

    def __str__(self) -> str:
        return f"contract {self.pk} ({self.kind}, {self.status})"


class ContractParty(models.Model):
    """An organisation bound by a contract, in a role the kind names (seller, buyer …)."""

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="parties")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "organisation"], name="contracts_party_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contract_id}:{self.organisation_id} ({self.role})"


class Agreement(models.Model):
    """A party's yes to one version of a contract: activation, amendment or termination."""

    ledger_subject_type = "contract_agreement"

    class Action(models.TextChoices):
        ACTIVATE = "activate"
        AMEND = "amend"
        TERMINATE = "terminate"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="agreements")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=10, choices=Action.choices)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    agreed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    agreed_at = models.DateTimeField()
    document_sha256 = models.CharField(max_length=64, help_text="Of the signed document bytes.")
    key = models.ForeignKey(
        OrganisationKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signature = models.CharField(max_length=128, blank=True, help_text="Ed25519, hex.")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "version", "organisation"], name="contracts_agreed_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contract_id} v{self.version} {self.action} by {self.organisation_id}"


class ContractExecution(models.Model):
    """One act of a contract for one trigger (an issuance, a month): applied, or failed
    with its reason (retried or parked), never half-applied."""

    ledger_subject_type = "contract_execution"

    class Status(models.TextChoices):
        APPLIED = "applied"
        FAILED = "failed"  # will be retried
        PARKED = "parked"  # waits for a party

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="executions")
    trigger = models.CharField(max_length=64, help_text="issuance:<id> or period:<YYYY-MM>.")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices)
    reason_code = models.CharField(max_length=64, blank=True)
    reason_detail = models.TextField(blank=True)
    result = models.JSONField(default=dict)
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "id"], name="contracts_exec_status")]
        constraints = [
            models.UniqueConstraint(fields=["contract", "trigger"], name="contracts_exec_once")
        ]

    def __str__(self) -> str:
        return f"{self.contract_id}@{self.trigger}: {self.status}"


class SettlementObligation(models.Model):
    """Money an execution says one party owes another, in integer minor units; paid
    through a settlement handler (the market's accounts) when one is registered."""

    ledger_subject_type = "settlement_obligation"

    class Status(models.TextChoices):
        OPEN = "open"
        SETTLED = "settled"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="+")
    execution = models.OneToOneField(
        ContractExecution, on_delete=models.PROTECT, related_name="obligation"
    )
    payer = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    payee = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    volume_wh = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    reference = models.CharField(max_length=100, blank=True, help_text="The settler's record.")
    reason_code = models.CharField(
        max_length=64, blank=True, help_text="Why the last attempt left it open (a code)."
    )
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gte=0), name="contracts_amount_pos")
        ]

    def __str__(self) -> str:
        return f"{self.payer_id} owes {self.payee_id} {self.amount_minor} {self.currency}"


class StorageState(models.Model):
    """A battery's state of charge under storage balancing: the Wh it can still deliver
    (charge after round-trip losses, less discharge), and the end of the last period
    executed; never negative, never above the capacity (database constraints)."""

    ledger_subject_type = "device"

    device = models.OneToOneField(
        "assets.Device", on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    soc_wh = models.BigIntegerField(default=0)
    capacity_wh = models.BigIntegerField()
    through = models.DateTimeField(null=True, blank=True, help_text="End of the last period.")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(soc_wh__gte=0), name="contracts_soc_gte_0"),
            models.CheckConstraint(
                condition=Q(soc_wh__lte=models.F("capacity_wh")), name="contracts_soc_lte_capacity"
            ),
        ]

    def __str__(self) -> str:
        return f"battery {self.device_id}: {self.soc_wh}/{self.capacity_wh} Wh"


class StorageLayer(models.Model):
    """Energy one charge put into a battery, discharged first in, first out: the cancelled
    bundle it came from (None: charge no certificate covered, never certified), the Wh it
    can deliver after losses (`stored_wh`), what is left of it, and the loss."""

    device = models.ForeignKey("assets.Device", on_delete=models.PROTECT, related_name="+")
    execution = models.ForeignKey(ContractExecution, on_delete=models.PROTECT, related_name="+")
    charged_at = models.DateTimeField(help_text="Start of the charging hour.")
    charged_wh = models.BigIntegerField()
    stored_wh = models.BigIntegerField()
    remaining_wh = models.BigIntegerField()
    charged_bundle = models.OneToOneField(
        "certificates.Bundle", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["device", "id"]
        indexes = [
            models.Index(
                fields=["device", "id"],
                condition=Q(remaining_wh__gt=0),
                name="contracts_layer_open",
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(remaining_wh__gte=0)
                & Q(remaining_wh__lte=models.F("stored_wh"))
                & Q(stored_wh__lte=models.F("charged_wh")),
                name="contracts_layer_wh",
            ),
        ]

    def __str__(self) -> str:
        return f"battery {self.device_id} layer {self.pk}: {self.remaining_wh}/{self.stored_wh} Wh"
