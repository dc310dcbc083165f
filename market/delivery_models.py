"""Delivery settlement of cleared energy slots (imported by market/models.py).

A `SlotSettlement` is one per `SlotClearing`: `waiting` (readings missing, with the
organisations whose meters are incomplete) until every party's readings cover the slot
or the market's grace period runs out, then `settled`, with one `SlotSettlementLine` per
cleared order. The database keeps the Wh and the money conserved (rules: docs/market.md,
"Delivery settlement").
"""

from django.db import models
from django.db.models import F, Q


class SlotSettlement(models.Model):
    """The delivery settlement of one cleared slot (Wh and minor units)."""

    ledger_subject_type = "slot_settlement"

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting for readings"
        SETTLED = "settled", "Settled"

    class Reason(models.TextChoices):
        NONE = "", "Every party's readings cover the slot"
        MISSING_READINGS = "missing_readings", "Readings missing; waiting for them"
        FALLBACK = "fallback_missing_readings", "Settled after the grace period; missing = 0 Wh"

    clearing = models.OneToOneField(
        "market.SlotClearing", on_delete=models.PROTECT, related_name="settlement"
    )
    market = models.ForeignKey("market.Market", on_delete=models.PROTECT, related_name="+")
    slot_start = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices)
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    missing_organisations = models.JSONField(
        default=list, help_text="Organisations whose readings did not cover the slot."
    )
    cleared_wh = models.BigIntegerField(help_text="The slot's cleared volume.")
    delivered_wh = models.BigIntegerField(
        default=0, help_text="Energy delivered through the market (sold, produced, consumed)."
    )
    buyers_paid_minor = models.BigIntegerField(default=0)
    sellers_received_minor = models.BigIntegerField(default=0)
    grid_fee_minor = models.BigIntegerField(default=0)
    released_minor = models.BigIntegerField(default=0, help_text="Escrow back to the buyers.")
    shortfall_charged_minor = models.BigIntegerField(default=0)
    surplus_paid_minor = models.BigIntegerField(default=0)
    uncollected_minor = models.BigIntegerField(
        default=0, help_text="Charges and surplus payments the payer's funds did not cover."
    )
    certificates_pending_wh = models.BigIntegerField(
        default=0, help_text="Delivered Wh whose certificates the sellers could not deliver."
    )
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(delivered_wh__gte=0) & Q(delivered_wh__lte=F("cleared_wh")),
                name="market_settlement_delivered_within_cleared",
            ),
            # The buyers' payments go, whole, to the sellers and the grid fee.
            models.CheckConstraint(
                condition=Q(buyers_paid_minor=F("sellers_received_minor") + F("grid_fee_minor"))
                & Q(grid_fee_minor__gte=0)
                & Q(sellers_received_minor__gte=0)
                & Q(released_minor__gte=0)
                & Q(shortfall_charged_minor__gte=0)
                & Q(surplus_paid_minor__gte=0)
                & Q(uncollected_minor__gte=0),
                name="market_settlement_money_conserved",
            ),
            models.CheckConstraint(
                condition=Q(certificates_pending_wh__gte=0)
                & Q(certificates_pending_wh__lte=F("delivered_wh")),
                name="market_settlement_certificates_within_delivered",
            ),
            models.CheckConstraint(
                condition=(Q(status="waiting") & Q(reason="missing_readings") & Q(delivered_wh=0))
                | (Q(status="settled") & Q(reason__in=["", "fallback_missing_readings"])),
                name="market_settlement_status_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"settlement of clearing {self.clearing_id} ({self.status})"


class SlotSettlementLine(models.Model):
    """One cleared order's delivery: its cleared Wh split into delivered, surplus and
    shortfall, and the money it paid or received."""

    settlement = models.ForeignKey(SlotSettlement, on_delete=models.PROTECT, related_name="lines")
    order = models.OneToOneField(
        "market.Order", on_delete=models.PROTECT, related_name="settlement_line"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    side = models.CharField(max_length=4)
    cleared_wh = models.BigIntegerField()
    metered_wh = models.BigIntegerField(help_text="The party's metered Wh in the slot.")
    delivered_wh = models.BigIntegerField()
    surplus_wh = models.BigIntegerField()
    shortfall_wh = models.BigIntegerField()
    amount_minor = models.BigIntegerField(
        help_text="Buyer: paid at the clearing price. Seller: received (after the grid fee)."
    )
    released_minor = models.BigIntegerField(default=0, help_text="Buyer: escrow released.")
    charge_minor = models.BigIntegerField(default=0, help_text="Seller: shortfall charge paid.")
    surplus_paid_minor = models.BigIntegerField(default=0, help_text="Seller: surplus paid.")
    uncollected_minor = models.BigIntegerField(default=0)
    certificates_wh = models.BigIntegerField(
        default=0, help_text="Wh of certificates delivered with the energy (to or from it)."
    )
    retirement = models.OneToOneField(
        "certificates.Retirement",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Bid retiring on delivery: the retirement of the certificates it received.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(delivered_wh__gte=0)
                & Q(surplus_wh__gte=0)
                & Q(shortfall_wh__gte=0)
                & Q(cleared_wh=F("delivered_wh") + F("surplus_wh") + F("shortfall_wh"))
                & Q(certificates_wh__gte=0)
                & Q(certificates_wh__lte=F("delivered_wh")),
                name="market_settlement_line_wh_conserved",
            ),
            models.CheckConstraint(
                condition=Q(amount_minor__gte=0)
                & Q(released_minor__gte=0)
                & Q(charge_minor__gte=0)
                & Q(surplus_paid_minor__gte=0)
                & Q(uncollected_minor__gte=0)
                & Q(metered_wh__gte=0),
                name="market_settlement_line_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id}: {self.delivered_wh}/{self.cleared_wh} Wh delivered"
