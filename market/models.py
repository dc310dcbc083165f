"""Market: money (settlement accounts, a double-entry journal, escrow), markets, orders, trades.

Money is an integer number of minor units (cents) of one ISO 4217 currency. Every
movement is one `JournalEntry` whose `JournalLine`s sum to zero; a line changes one
bucket (available or reserved) of one settlement account, and the account rows carry the
running balances, which a database constraint keeps non-negative. Money itself moves
outside the registry: deposits and withdrawals are recorded by the market operator
against an external reference, as lines against the currency's one `external` account
(whose balance is minus what members hold).

A certificate market matches continuously (price-time priority, see market/matching.py).
An energy market (`kind=energy`, `matching=uniform`) takes orders for delivery slots
(`Order.product=energy`, `Order.slot_start`) until gate closure and clears each slot at
one price (market/clearing.py), recorded as a `SlotClearing`.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Account, Organisation


class MarketOperator(models.Model):
    """An organisation the issuing body named market operator: it records deposits and
    withdrawals (the issuing body may always do so too)."""

    ledger_subject_type = "organisation"

    organisation = models.OneToOneField(
        Organisation, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    granted_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"market operator {self.organisation_id}"


class SettlementAccount(models.Model):
    """An organisation's money in one currency: available, and reserved for open bids."""

    ledger_subject_type = "settlement_account"

    class Kind(models.TextChoices):
        MEMBER = "member", "Member"
        EXTERNAL = "external", "Outside the registry (counterpart of deposits)"

    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="settlement_accounts",
    )
    currency = models.CharField(max_length=3, help_text="ISO 4217 code.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MEMBER)
    available = models.BigIntegerField(default=0, help_text="Minor units free to use.")
    reserved = models.BigIntegerField(default=0, help_text="Minor units held for open bids.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # The money rule, in the database: a member's balances never go negative,
            # whatever code path (or hand-written SQL) writes them.
            models.CheckConstraint(
                condition=Q(kind="external") | (Q(available__gte=0) & Q(reserved__gte=0)),
                name="market_settlement_non_negative",
            ),
            models.CheckConstraint(
                condition=(Q(kind="member") & Q(organisation__isnull=False))
                | (Q(kind="external") & Q(organisation__isnull=True) & Q(reserved=0)),
                name="market_settlement_kind",
            ),
            models.UniqueConstraint(
                fields=["organisation", "currency"],
                condition=Q(kind="member"),
                name="market_settlement_one_per_currency",
            ),
            models.UniqueConstraint(
                fields=["currency"],
                condition=Q(kind="external"),
                name="market_settlement_one_external",
            ),
        ]

    def __str__(self) -> str:
        owner = self.organisation_id if self.organisation_id else "external"
        return f"{owner} {self.currency}: {self.available} (+{self.reserved} reserved)"


class JournalEntry(models.Model):
    """One movement of money: its lines sum to zero."""

    ledger_subject_type = "journal_entry"

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        RESERVE = "reserve", "Reserved for a bid"
        RELEASE = "release", "Released from a bid"
        TRADE = "trade", "Trade settlement"
        CONTRACT_PAYMENT = "contract_payment", "Contract payment (settlement obligation)"
        BILL_PAYMENT = "bill_payment", "Charging bill payment"
        DELIVERY = "delivery", "Energy slot delivery settlement"
        IMBALANCE = "imbalance", "Energy slot shortfall charge or surplus payment"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    order = models.ForeignKey(
        "market.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    trade = models.ForeignKey(
        "market.Trade", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reference = models.CharField(
        max_length=200,
        blank=True,
        help_text="External reference (bank transfer) of a deposit; for a payment, what it "
        "pays (`settlement_obligation:<id>`, `charging_bill:<id>`).",
    )
    reference_salt = models.CharField(max_length=32, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            # A contract obligation or a bill is paid once, however often (or however
            # concurrently) its settlement is attempted.
            models.UniqueConstraint(
                fields=["kind", "reference"],
                condition=Q(kind__in=["contract_payment", "bill_payment"]),
                name="market_payment_once",
            ),
        ]

    def __str__(self) -> str:
        return f"journal entry #{self.pk} ({self.kind})"


class JournalLine(models.Model):
    """One side of a movement: `amount` (signed, non-zero) on one bucket of one account."""

    class Bucket(models.TextChoices):
        AVAILABLE = "available", "Available"
        RESERVED = "reserved", "Reserved"

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(SettlementAccount, on_delete=models.PROTECT, related_name="lines")
    bucket = models.CharField(max_length=10, choices=Bucket.choices)
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "id"], name="market_line_account")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="market_line_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.entry_id}: {self.account_id}.{self.bucket} {self.amount:+d}"


class Market(models.Model):
    """Where orders meet: one product, one currency, its price band and fee."""

    ledger_subject_type = "market"

    class Kind(models.TextChoices):
        CERTIFICATES = "certificates", "Certificates for immediate delivery"
        ENERGY = "energy", "Energy for delivery slots"

    class Matching(models.TextChoices):
        CONTINUOUS = "continuous", "Continuous, price-time priority"
        UNIFORM = "uniform", "Uniform-price clearing per slot"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        HALTED = "halted", "Halted"

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CERTIFICATES)
    matching = models.CharField(
        max_length=16, choices=Matching.choices, default=Matching.CONTINUOUS
    )
    currency = models.CharField(max_length=3, help_text="ISO 4217 code.")
    operator = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Receives the fees.",
    )
    fee_bps = models.PositiveIntegerField(
        default=0, help_text="Fee on each trade's amount, basis points, paid by the seller."
    )
    price_min = models.BigIntegerField(help_text="Lowest limit price, minor units per MWh.")
    price_max = models.BigIntegerField(help_text="Highest limit price, minor units per MWh.")
    min_quantity_wh = models.BigIntegerField(default=1)
    slot_minutes = models.PositiveIntegerField(
        default=15,
        help_text="Energy markets: length of a delivery slot (divides a day; slots start at "
        "UTC midnight plus whole slots).",
    )
    gate_closure_minutes = models.PositiveIntegerField(
        default=5,
        help_text="Energy markets: orders for a slot close this long before it starts.",
    )
    grid_area = models.ForeignKey(
        "assets.GridArea",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Energy markets: the grid area whose energy it trades (its cleared prices "
        "price the area's community bills).",
    )
    fallback_buy_price = models.BigIntegerField(
        default=0,
        help_text="Energy markets: the supplier's price (minor units per MWh) charged to a "
        "seller for each Wh it sold but did not produce.",
    )
    fallback_sell_price = models.BigIntegerField(
        default=0,
        help_text="Energy markets: the price (minor units per MWh) the operator pays a seller "
        "for each Wh it delivered that the market's buyers did not consume.",
    )
    grid_fee_per_mwh = models.BigIntegerField(
        default=0,
        help_text="Energy markets: grid fee (minor units per MWh delivered) taken from the "
        "buyers' payments for the operator.",
    )
    settlement_grace_minutes = models.PositiveIntegerField(
        default=1440,
        help_text="Energy markets: how long after a slot ends its settlement waits for "
        "missing readings before it settles at fallback (missing readings count 0 Wh).",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(fallback_buy_price__gte=0)
                & Q(fallback_sell_price__gte=0)
                & Q(grid_fee_per_mwh__gte=0),
                name="market_fallback_prices",
            ),
            models.CheckConstraint(
                condition=Q(price_min__gte=0) & Q(price_max__gte=F("price_min")),
                name="market_price_band",
            ),
            models.CheckConstraint(
                condition=Q(slot_minutes__gte=1) & Q(slot_minutes__lte=1440),
                name="market_slot_minutes",
            ),
            models.CheckConstraint(condition=Q(fee_bps__lte=10_000), name="market_fee_bps"),
            models.CheckConstraint(condition=Q(min_quantity_wh__gte=1), name="market_min_qty"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.currency})"


class OrderBook(models.Model):
    """The book's lock row (every order change of the market takes it FOR UPDATE) and the
    arrival counter that gives time priority."""

    market = models.OneToOneField(
        Market, on_delete=models.PROTECT, primary_key=True, related_name="book"
    )
    next_seq = models.BigIntegerField(default=1)

    def __str__(self) -> str:
        return f"book of market {self.market_id}"


class Order(models.Model):
    """A bid or an offer; its escrow (funds or units) is held while it is open."""

    ledger_subject_type = "order"

    class Side(models.TextChoices):
        BUY = "buy", "Bid (buy)"
        SELL = "sell", "Offer (sell)"

    class Status(models.TextChoices):
        OPEN = "open", "Open (resting in the book; energy: until its slot is cleared)"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        CLEARED = "cleared", "Cleared in full at its slot's clearing (energy)"
        PARTIALLY_CLEARED = "partially_cleared", "Cleared in part (energy)"
        UNFILLED = "unfilled", "Nothing cleared at its slot's clearing (energy)"

    class TimeInForce(models.TextChoices):
        GTC = "gtc", "Good till cancelled"
        IOC = "ioc", "Immediate or cancel"
        FOK = "fok", "Fill or kill"

    class Product(models.TextChoices):
        CERTIFICATE = "certificate", "Certificates"
        ENERGY = "energy", "Energy in a delivery slot"

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="orders")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=4, choices=Side.choices)
    product = models.CharField(max_length=12, choices=Product.choices, default="certificate")
    slot_start = models.DateTimeField(
        null=True, blank=True, help_text="Delivery slot (energy markets); empty here."
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices)
    limit_price = models.BigIntegerField(help_text="Minor units per MWh.")
    quantity_wh = models.BigIntegerField()
    filled_wh = models.BigIntegerField(default=0)
    min_fill_wh = models.BigIntegerField(default=0)
    seq = models.BigIntegerField(help_text="Time priority within the market (arrival order).")
    settlement_account = models.ForeignKey(
        SettlementAccount, on_delete=models.PROTECT, related_name="orders"
    )
    certificate_account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Bid: where bought units go. Offer: where the units are held.",
    )
    bundle = models.ForeignKey(
        "certificates.Bundle",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Offer: the bundle holding its reserved units (the unsold rest).",
    )
    reserved_minor = models.BigIntegerField(
        default=0,
        help_text="Bid: funds still held in escrow for it (energy, after clearing: for the "
        "cleared Wh at the clearing price, until delivery is settled).",
    )
    clearing = models.ForeignKey(
        "market.SlotClearing",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        help_text="Energy: the clearing of its slot; `filled_wh` is then its cleared Wh.",
    )
    cancel_reason = models.CharField(max_length=24, blank=True)
    # Offers: what the certificates are (copied from the issuance for matching in SQL).
    technology_code = models.CharField(max_length=32, blank=True)
    energy_source_code = models.CharField(max_length=32, blank=True)
    country = models.CharField(max_length=2, blank=True)
    grid_area_code = models.CharField(max_length=32, blank=True)
    device = models.ForeignKey(
        "assets.Device", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # Bids: what they accept (empty / null: anything).
    accept_technology_code = models.CharField(max_length=32, blank=True)
    accept_energy_source_code = models.CharField(max_length=32, blank=True)
    accept_country = models.CharField(max_length=2, blank=True)
    accept_grid_area_code = models.CharField(max_length=32, blank=True)
    accept_device = models.ForeignKey(
        "assets.Device", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    accept_period_from = models.DateTimeField(null=True, blank=True)
    accept_period_to = models.DateTimeField(null=True, blank=True)
    max_age_days = models.PositiveIntegerField(null=True, blank=True)
    # Energy bids: retire the certificates delivered with the energy for the slot's
    # consumption (market/retire_claim.py; the claim's consumption period is the slot).
    # Database defaults too: raw INSERTs (the benchmarks' baselines) need not name them.
    retire_on_delivery = models.BooleanField(default=False, db_default=False)
    retire_beneficiary_name = models.CharField(max_length=200, blank=True, db_default="")
    retire_beneficiary_country = models.CharField(max_length=2, blank=True, db_default="")
    retire_purpose = models.CharField(max_length=32, blank=True, db_default="")
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["market", "side", "limit_price", "seq"],
                condition=Q(status="open"),
                name="market_order_book",
            ),
            models.Index(
                fields=["market", "slot_start"],
                condition=Q(status="open", slot_start__isnull=False),
                name="market_order_open_slot",
            ),
            models.Index(fields=["organisation", "id"], name="market_order_org"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity_wh__gt=0)
                & Q(filled_wh__gte=0)
                & Q(filled_wh__lte=F("quantity_wh")),
                name="market_order_fill_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(retire_on_delivery=False)
                | (
                    Q(side="buy", slot_start__isnull=False)
                    & ~Q(retire_beneficiary_name="")
                    & ~Q(retire_beneficiary_country="")
                    & ~Q(retire_purpose="")
                ),
                name="market_order_retire_on_delivery_energy_bid",
            ),
            models.CheckConstraint(
                condition=Q(limit_price__gte=0) & Q(reserved_minor__gte=0) & Q(min_fill_wh__gte=0),
                name="market_order_non_negative",
            ),
            models.CheckConstraint(
                condition=~Q(status="filled") | Q(filled_wh=F("quantity_wh")),
                name="market_order_filled_is_full",
            ),
            models.CheckConstraint(
                condition=(~Q(status="cleared") | Q(filled_wh=F("quantity_wh")))
                & (~Q(status="unfilled") | Q(filled_wh=0))
                & (
                    ~Q(status="partially_cleared")
                    | (Q(filled_wh__gt=0) & Q(filled_wh__lt=F("quantity_wh")))
                ),
                name="market_order_cleared_status",
            ),
            models.CheckConstraint(
                condition=Q(product="certificate", slot_start__isnull=True)
                | Q(product="energy", slot_start__isnull=False, bundle__isnull=True),
                name="market_order_product_slot",
            ),
        ]

    def __str__(self) -> str:
        return f"order #{self.pk} {self.side} {self.quantity_wh} Wh @ {self.limit_price}"

    @property
    def open_wh(self) -> int:
        return self.quantity_wh - self.filled_wh if self.status == self.Status.OPEN else 0


class Trade(models.Model):
    """A fill: units delivered to the buyer, money to the seller (less the fee), at once."""

    ledger_subject_type = "trade"

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="trades")
    buy_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    sell_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    aggressor = models.CharField(max_length=4, choices=Order.Side.choices)
    price = models.BigIntegerField(help_text="Minor units per MWh (the resting order's).")
    quantity_wh = models.BigIntegerField()
    amount_minor = models.BigIntegerField(help_text="What the buyer paid.")
    fee_minor = models.BigIntegerField(default=0, help_text="Of which the operator's fee.")
    bundle = models.ForeignKey(
        "certificates.Bundle", on_delete=models.PROTECT, related_name="+", help_text="Delivered."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["market", "id"], name="market_trade_market")]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity_wh__gt=0)
                & Q(amount_minor__gte=0)
                & Q(fee_minor__gte=0)
                & Q(fee_minor__lte=F("amount_minor")),
                name="market_trade_amounts",
            ),
        ]

    def __str__(self) -> str:
        return f"trade #{self.pk} {self.quantity_wh} Wh @ {self.price}"


class SlotClearing(models.Model):
    """One delivery slot of an energy market cleared at one price (once: unique per slot).

    Each order's cleared Wh is kept on the order (`Order.filled_wh`, with `Order.clearing`)
    rather than in a row per order: an energy order belongs to exactly one slot and is
    cleared exactly once, so such a row would be one-to-one with the order; `filled_wh`
    already means "how much of this order traded" (its CHECK keeps it within the quantity),
    and the ledger replay already rebuilds and compares it.
    """

    ledger_subject_type = "slot_clearing"

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="clearings")
    slot_start = models.DateTimeField()
    price = models.BigIntegerField(
        null=True, blank=True, help_text="Minor units per MWh; empty when nothing cleared."
    )
    volume_wh = models.BigIntegerField(default=0)
    orders_count = models.PositiveIntegerField(default=0, help_text="Orders in the slot.")
    cleared_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["market", "slot_start"], name="market_one_clearing"),
            models.CheckConstraint(
                condition=(Q(volume_wh=0) & Q(price__isnull=True))
                | (Q(volume_wh__gt=0) & Q(price__gte=0)),
                name="market_clearing_price_volume",
            ),
        ]

    def __str__(self) -> str:
        return f"clearing of market {self.market_id} slot {self.slot_start:%Y-%m-%d %H:%M}"


# market.metering defines the site consumption hook while the models load: the consumers
# app's ready(), which runs before the market's, registers into it by name.
import market.metering  # noqa: E402, F401
from market.agent_models import AgentDecision, TradingAgent  # noqa: E402
from market.delivery_models import SlotSettlement, SlotSettlementLine  # noqa: E402

__all__ = [
    "AgentDecision",
    "JournalEntry",
    "JournalLine",
    "Market",
    "MarketOperator",
    "Order",
    "OrderBook",
    "SettlementAccount",
    "SlotClearing",
    "SlotSettlement",
    "SlotSettlementLine",
    "Trade",
    "TradingAgent",
]
