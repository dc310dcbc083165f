"""The data of market ledger events: one builder per kind (catalogue: ledger/EVENTS.md).

What the public ledger reveals, and why, is in docs/market.md ("What the ledger shows"):
orders, prices, quantities, trades and amounts are public (anyone can check that no cent
and no Wh was created); the external reference of a deposit or withdrawal (a bank
transfer id) is committed as a salted SHA-256 instead.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.models import (
        JournalEntry,
        Market,
        Order,
        SettlementAccount,
        SlotClearing,
        SlotSettlement,
        SlotSettlementLine,
        Trade,
    )

MARKET_CREATED = "market.created"
OPERATOR_GRANTED = "market_operator.granted"
DEPOSITED = "settlement.deposited"
WITHDRAWN = "settlement.withdrawn"
ORDER_PLACED = "order.placed"
ORDER_AMENDED = "order.amended"
ORDER_CANCELLED = "order.cancelled"
PAID = "settlement.paid"
SLOT_CLEARED = "market.slot_cleared"
SLOT_SETTLEMENT_WAITING = "market.slot_settlement_waiting"
SLOT_SETTLED = "market.slot_settled"
SLOT_CERTIFICATES_DELIVERED = "market.slot_certificates_delivered"

KINDS = (
    MARKET_CREATED,
    OPERATOR_GRANTED,
    DEPOSITED,
    WITHDRAWN,
    ORDER_PLACED,
    ORDER_AMENDED,
    ORDER_CANCELLED,
    PAID,
    SLOT_CLEARED,
    SLOT_SETTLEMENT_WAITING,
    SLOT_SETTLED,
    SLOT_CERTIFICATES_DELIVERED,
)


def reference_commitment(salt: str, reference: str) -> str:
    return hashlib.sha256(f"{salt}\n{reference}".encode()).hexdigest()


def entry_data(entry: JournalEntry) -> dict[str, Any]:
    """A journal entry: its lines as [settlement_account_id, bucket, amount] (sum zero)."""
    return {
        "journal_entry_id": entry.pk,
        "kind": entry.kind,
        "currency": entry.currency,
        "lines": [list(line) for line in entry.posted_lines],
    }


def external_movement_data(
    entry: JournalEntry,
    account: SettlementAccount,
    amount: int,
    commitment: str,
    external_id: int,
) -> dict[str, Any]:
    return {
        "organisation_id": account.organisation_id,
        "settlement_account_id": account.pk,
        "currency": entry.currency,
        "amount_minor": amount,
        "reference_commitment": commitment,
        "external_account_id": external_id,
        "journal": [entry_data(entry)],
    }


def payment_data(
    entry: JournalEntry,
    payer: SettlementAccount,
    payee: SettlementAccount,
    amount: int,
    paid_for: str,
) -> dict[str, Any]:
    """A payment between two members: what it pays (`settlement_obligation:<id>`,
    `charging_bill:<id>`), who paid whom, and its journal entry."""
    return {
        "paid_for": paid_for,
        "currency": entry.currency,
        "amount_minor": amount,
        "payer_organisation_id": payer.organisation_id,
        "payer_settlement_account_id": payer.pk,
        "payee_organisation_id": payee.organisation_id,
        "payee_settlement_account_id": payee.pk,
        "journal": [entry_data(entry)],
    }


def market_data(market: Market) -> dict[str, Any]:
    return {
        "market_id": market.pk,
        "code": market.code,
        "kind": market.kind,
        "matching": market.matching,
        "currency": market.currency,
        "operator_id": market.operator_id,
        "fee_bps": market.fee_bps,
        "price_min": market.price_min,
        "price_max": market.price_max,
        "min_quantity_wh": market.min_quantity_wh,
        **(
            {
                "slot_minutes": market.slot_minutes,
                "gate_closure_minutes": market.gate_closure_minutes,
                "fallback_buy_price": market.fallback_buy_price,
                "fallback_sell_price": market.fallback_sell_price,
                "grid_fee_per_mwh": market.grid_fee_per_mwh,
                "settlement_grace_minutes": market.settlement_grace_minutes,
            }
            if market.matching == "uniform"
            else {}
        ),
        **({"grid_area_id": market.grid_area_id} if market.grid_area_id else {}),
    }


def order_data(order: Order) -> dict[str, Any]:
    """An order's state after the event (replay sets the order to exactly this)."""
    data: dict[str, Any] = {
        "order_id": order.pk,
        "market_id": order.market_id,
        "organisation_id": order.organisation_id,
        "side": order.side,
        "status": order.status,
        "time_in_force": order.time_in_force,
        "limit_price": order.limit_price,
        "quantity_wh": order.quantity_wh,
        "filled_wh": order.filled_wh,
        "min_fill_wh": order.min_fill_wh,
        "seq": order.seq,
        "settlement_account_id": order.settlement_account_id,
        "certificate_account_id": order.certificate_account_id,
        "bundle_id": order.bundle_id,
        "reserved_minor": order.reserved_minor,
        "cancel_reason": order.cancel_reason,
    }
    if order.slot_start is not None:
        # An energy order: the delivery slot, and the account that receives (bid) or
        # produced (offer) the energy's certificates; no attributes or criteria.
        data["product"] = order.product
        data["slot_start"] = order.slot_start
        if order.retire_on_delivery:
            # The claim's country and purpose; the beneficiary's name stays out (the
            # retirement's salted claim commitment covers it).
            data["retire_on_delivery"] = {
                "beneficiary_country": order.retire_beneficiary_country,
                "purpose": order.retire_purpose,
            }
        return data
    if order.side == "sell":
        data["attributes"] = {
            "technology_code": order.technology_code,
            "energy_source_code": order.energy_source_code,
            "country": order.country,
            "grid_area": order.grid_area_code,
            "device_id": order.device_id,
            "period_start": order.period_start,
            "period_end": order.period_end,
        }
    else:
        data["criteria"] = {
            "technology_code": order.accept_technology_code or None,
            "energy_source_code": order.accept_energy_source_code or None,
            "country": order.accept_country or None,
            "grid_area": order.accept_grid_area_code or None,
            "device_id": order.accept_device_id,
            "period_from": order.accept_period_from,
            "period_to": order.accept_period_to,
            "max_age_days": order.max_age_days,
        }
    return data


def maker_data(order: Order) -> dict[str, Any]:
    """A resting order a fill changed: its state after the event."""
    return {
        "order_id": order.pk,
        "status": order.status,
        "filled_wh": order.filled_wh,
        "bundle_id": order.bundle_id,
        "reserved_minor": order.reserved_minor,
    }


def trade_data(trade: Trade) -> dict[str, Any]:
    return {
        "trade_id": trade.pk,
        "buy_order_id": trade.buy_order_id,
        "sell_order_id": trade.sell_order_id,
        "aggressor": trade.aggressor,
        "price": trade.price,
        "quantity_wh": trade.quantity_wh,
        "amount_minor": trade.amount_minor,
        "fee_minor": trade.fee_minor,
        "bundle_id": trade.bundle_id,
    }


def slot_clearing_data(
    clearing: SlotClearing,
    orders: list[Order],
    entries: list[JournalEntry],
    netted: dict[int, int],
) -> dict[str, Any]:
    """A slot's clearing: price and volume, each order's state after it (with the Wh
    self-trade prevention took out of it, `netted` by order id), the releases."""
    return {
        "clearing": {
            "clearing_id": clearing.pk,
            "market_id": clearing.market_id,
            "slot_start": clearing.slot_start,
            "price": clearing.price,
            "volume_wh": clearing.volume_wh,
            "orders_count": clearing.orders_count,
            "cleared_at": clearing.cleared_at,
        },
        "orders": [
            {
                **maker_data(order),
                "cancel_reason": order.cancel_reason,
                "self_trade_netted_wh": netted.get(order.pk, 0),
            }
            for order in orders
        ],
        "journal": [entry_data(entry) for entry in entries],
    }


def settlement_data(
    settlement: SlotSettlement,
    lines: list[SlotSettlementLine],
    orders: list[Order],
    entries: list[JournalEntry],
) -> dict[str, Any]:
    """A slot's delivery settlement (or its wait for readings): totals, each cleared
    order's line, the bids' escrow after it (0), and the journal entries."""
    return {
        "settlement": {
            "slot_settlement_id": settlement.pk,
            "clearing_id": settlement.clearing_id,
            "market_id": settlement.market_id,
            "slot_start": settlement.slot_start,
            "status": settlement.status,
            "reason": settlement.reason,
            "missing_organisations": settlement.missing_organisations,
            "cleared_wh": settlement.cleared_wh,
            "delivered_wh": settlement.delivered_wh,
            "buyers_paid_minor": settlement.buyers_paid_minor,
            "sellers_received_minor": settlement.sellers_received_minor,
            "grid_fee_minor": settlement.grid_fee_minor,
            "released_minor": settlement.released_minor,
            "shortfall_charged_minor": settlement.shortfall_charged_minor,
            "surplus_paid_minor": settlement.surplus_paid_minor,
            "uncollected_minor": settlement.uncollected_minor,
            "certificates_pending_wh": settlement.certificates_pending_wh,
        },
        "lines": [
            {
                "order_id": line.order_id,
                "organisation_id": line.organisation_id,
                "side": line.side,
                "cleared_wh": line.cleared_wh,
                "metered_wh": line.metered_wh,
                "delivered_wh": line.delivered_wh,
                "surplus_wh": line.surplus_wh,
                "shortfall_wh": line.shortfall_wh,
                "amount_minor": line.amount_minor,
                "released_minor": line.released_minor,
                "charge_minor": line.charge_minor,
                "surplus_paid_minor": line.surplus_paid_minor,
                "uncollected_minor": line.uncollected_minor,
                "certificates_wh": line.certificates_wh,
                # A bid retiring on delivery: the next event, `certificate.retired`
                # (mandate {"slot_settlement_id", "order_id"}), retires what it received.
                **({"retire_on_delivery": True} if line.order.retire_on_delivery else {}),
            }
            for line in lines
        ],
        "orders": [maker_data(order) for order in orders],
        "journal": [entry_data(entry) for entry in entries],
    }


def certificates_delivered_data(
    settlement: SlotSettlement,
    lines: list[SlotSettlementLine],
    before: dict[int, int],
    moved: int,
) -> dict[str, Any]:
    """A later delivery of a settled slot's pending certificates: what moved this run,
    what is still pending, and each line it changed (its Wh of certificates after)."""
    return {
        "slot_settlement_id": settlement.pk,
        "clearing_id": settlement.clearing_id,
        "market_id": settlement.market_id,
        "slot_start": settlement.slot_start,
        "moved_wh": moved,
        "certificates_pending_wh": settlement.certificates_pending_wh,
        "lines": [
            {
                "order_id": line.order_id,
                "side": line.side,
                "moved_wh": line.certificates_wh - before[line.order_id],
                "certificates_wh": line.certificates_wh,
                **({"retire_on_delivery": True} if line.order.retire_on_delivery else {}),
            }
            for line in lines
        ],
    }
