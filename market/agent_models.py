"""Trading agents (imported by market/models.py): a delegation and each of its decisions.

A `TradingAgent` trades in one energy market for one organisation, as the member who
delegated (its orders are ordinary orders placed with that member's rights, so the
organisation's funds, the market's price band and gate closure apply as to any order).
Revoking it cancels its open orders. An `AgentDecision` is one run of the agent for one
slot: what it forecast, what it did, why, and the order it placed, amended or cancelled.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class TradingAgent(models.Model):
    """A delegation of trading in one energy market to software, with its preferences."""

    ledger_subject_type = "market_agent"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    market = models.ForeignKey("market.Market", on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The organisation's trading account its energy orders name.",
    )
    delegated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The member whose rights its orders are placed with.",
    )
    min_sell_price = models.BigIntegerField(help_text="Minor units per MWh.")
    max_buy_price = models.BigIntegerField(help_text="Minor units per MWh.")
    reserve_wh = models.BigIntegerField(
        default=0, help_text="Battery charge (Wh) it never sells below."
    )
    history_days = models.PositiveIntegerField(
        default=7, help_text="Days of readings its seasonal forecast averages."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "market"],
                condition=Q(status="active"),
                name="market_agent_one_active",
            ),
            models.CheckConstraint(
                condition=Q(min_sell_price__gte=0)
                & Q(max_buy_price__gte=0)
                & Q(reserve_wh__gte=0)
                & Q(history_days__gte=1),
                name="market_agent_preferences",
            ),
            models.CheckConstraint(
                condition=Q(status="active", revoked_at__isnull=True)
                | Q(status="revoked", revoked_at__isnull=False),
                name="market_agent_revoked_at",
            ),
        ]

    def __str__(self) -> str:
        return f"agent #{self.pk} of {self.organisation_id} in market {self.market_id}"


class AgentDecision(models.Model):
    """One run of an agent for one slot: forecast, action, order and explanation."""

    ledger_subject_type = "agent_decision"

    class Action(models.TextChoices):
        PLACED = "placed", "Placed an order"
        AMENDED = "amended", "Amended its order"
        KEPT = "kept", "Kept its order as it was"
        CANCELLED = "cancelled", "Cancelled its order (nothing to trade)"
        REPLACED = "replaced", "Cancelled its order and placed one on the other side"
        NONE = "none", "Nothing to trade, no order"
        SKIPPED = "skipped", "Refused by the order service (see reason)"

    agent = models.ForeignKey(TradingAgent, on_delete=models.PROTECT, related_name="decisions")
    slot_start = models.DateTimeField()
    action = models.CharField(max_length=10, choices=Action.choices)
    side = models.CharField(max_length=4, blank=True, help_text="buy, sell or empty.")
    quantity_wh = models.BigIntegerField(default=0)
    price = models.BigIntegerField(null=True, blank=True, help_text="Minor units per MWh.")
    production_wh = models.BigIntegerField(null=True, blank=True, help_text="Forecast.")
    consumption_wh = models.BigIntegerField(null=True, blank=True, help_text="Forecast.")
    battery_charge_wh = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=40, help_text="Why (a code).")
    explanation = models.TextField()
    order = models.ForeignKey(
        "market.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancelled_order = models.ForeignKey(
        "market.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["agent", "slot_start"], name="market_agent_decision_slot")]
        constraints = [
            models.CheckConstraint(condition=Q(quantity_wh__gte=0), name="market_decision_qty"),
        ]

    def __str__(self) -> str:
        return f"decision #{self.pk} of agent {self.agent_id}: {self.action}"


# Defines the battery charge hook while the models load: the contracts app's ready(), which
# runs before the market's, registers into it by name.
import market.agent_hooks  # noqa: E402, F401
