"""Every write of the market, re-exported: money, markets, orders, slot clearing."""

from market.services.markets import market_create
from market.services.money import (
    market_operator_grant,
    settlement_deposit,
    settlement_withdraw,
)
from market.services.orders import Placement, order_amend, order_cancel, order_place
from market.services.slots import slot_clear, slot_clear_due

__all__ = [
    "Placement",
    "market_create",
    "market_operator_grant",
    "order_amend",
    "order_cancel",
    "order_place",
    "settlement_deposit",
    "settlement_withdraw",
    "slot_clear",
    "slot_clear_due",
]
