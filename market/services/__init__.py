"""Every write of the market, re-exported: money, markets, orders, payments, slot clearing."""

from market.services.delivery import slot_settle, slot_settle_due
from market.services.delivery_pending import (
    slot_certificates_deliver,
    slot_certificates_deliver_due,
)
from market.services.markets import market_create
from market.services.money import (
    market_operator_grant,
    settlement_deposit,
    settlement_withdraw,
)
from market.services.orders import Placement, order_amend, order_cancel, order_place
from market.services.payments import charging_bill_pay, contract_obligation_pay, payment_make
from market.services.slots import slot_clear, slot_clear_due

__all__ = [
    "Placement",
    "charging_bill_pay",
    "contract_obligation_pay",
    "market_create",
    "market_operator_grant",
    "order_amend",
    "order_cancel",
    "order_place",
    "payment_make",
    "settlement_deposit",
    "settlement_withdraw",
    "slot_certificates_deliver",
    "slot_certificates_deliver_due",
    "slot_clear",
    "slot_clear_due",
    "slot_settle",
    "slot_settle_due",
]
