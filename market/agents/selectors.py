"""Reads of trading agents: the readings history an agent forecasts from, its battery's
charge, and the agents and decisions a user may see (no writes)."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import user_organisation_ids, user_reads_everything
from market.agent_hooks import BATTERY_CHARGE_LOOKUPS
from market.agent_models import AgentDecision, TradingAgent
from market.agents.forecast import Forecast, history_starts, slot_forecast
from market.metering import metered_wh


def agent_slot_forecast(*, agent: TradingAgent, slot_start: dt.datetime) -> Forecast:
    """The seasonal forecast of the agent's organisation for the slot, from the same meters
    the delivery settlement reads (market.metering), over the agent's `history_days`."""
    market = agent.market
    length = dt.timedelta(minutes=market.slot_minutes)
    org = agent.organisation_id
    history: dict[bool, list[int | None]] = {True: [], False: []}
    for start in history_starts(slot_start, agent.history_days):
        for production in (True, False):
            metered = metered_wh(
                organisation_ids=[org],
                production=production,
                grid_area_id=market.grid_area_id,
                start=start,
                end=start + length,
            )
            history[production].append(metered[org])
    return slot_forecast(production=history[True], consumption=history[False])


def agent_battery_charge(*, agent: TradingAgent) -> int | None:
    """The Wh the organisation's batteries hold (None: no storage known to any lookup)."""
    charges = [
        lookup(organisation_id=agent.organisation_id, grid_area_id=agent.market.grid_area_id)
        for lookup in BATTERY_CHARGE_LOOKUPS
    ]
    known = [wh for wh in charges if wh is not None]
    return sum(known) if known else None


def agent_list(*, user: User | None) -> QuerySet[TradingAgent]:
    """Agents of the user's organisations; the issuing body and auditors see all."""
    qs = TradingAgent.objects.all()
    if user is not None and user.is_authenticated and user_reads_everything(user):
        return qs
    return qs.filter(organisation_id__in=user_organisation_ids(user) if user else [])


def agent_decision_list(*, agent: TradingAgent) -> QuerySet[AgentDecision]:
    """The agent's decisions, newest first."""
    return AgentDecision.objects.filter(agent=agent).order_by("-id")


def agents_active() -> QuerySet[TradingAgent]:
    return TradingAgent.objects.filter(status=TradingAgent.Status.ACTIVE).select_related("market")
