"""The data of trading agent ledger events: one builder per kind (ledger/EVENTS.md).

Kept out of `market.events.KINDS`: the market replay rebuilds money and orders, which the
agents change only through the order events their services append in the same
transaction.
"""

from __future__ import annotations

from typing import Any

from market.agent_models import AgentDecision, TradingAgent

AGENT_DELEGATED = "market_agent.delegated"
AGENT_UPDATED = "market_agent.updated"
AGENT_REVOKED = "market_agent.revoked"
AGENT_DECIDED = "market_agent.decided"

KINDS = (AGENT_DELEGATED, AGENT_UPDATED, AGENT_REVOKED, AGENT_DECIDED)

PREFERENCES = ("min_sell_price", "max_buy_price", "reserve_wh", "history_days")


def preferences_data(agent: TradingAgent) -> dict[str, int]:
    return {name: getattr(agent, name) for name in PREFERENCES}


def agent_data(agent: TradingAgent) -> dict[str, Any]:
    return {
        "agent_id": agent.pk,
        "organisation_id": agent.organisation_id,
        "market_id": agent.market_id,
        "account_id": agent.account_id,
        "delegated_by": agent.delegated_by_id,
        "status": agent.status,
        **preferences_data(agent),
    }


def decision_data(decision: AgentDecision) -> dict[str, Any]:
    return {
        "decision_id": decision.pk,
        "agent_id": decision.agent_id,
        "slot_start": decision.slot_start.isoformat(),
        "action": decision.action,
        "side": decision.side,
        "quantity_wh": decision.quantity_wh,
        "price": decision.price,
        "production_wh": decision.production_wh,
        "consumption_wh": decision.consumption_wh,
        "battery_charge_wh": decision.battery_charge_wh,
        "reason": decision.reason,
        "order_id": decision.order_id,
        "cancelled_order_id": decision.cancelled_order_id,
    }
