"""Trading agents: delegate, update, revoke, and run one slot.

Every write is one transaction with one `market_agent.*` event naming the agent and every
order it touched. An agent's orders are ordinary orders: `agent_run_slot` places, amends
and cancels them through market.services.orders as the member who delegated, so escrow,
the price band, gate closure and that member's rights apply, and each order change
appends its own `order.*` event in the same transaction. A refusal of the order service
(insufficient funds, gate closed, the member no longer allowed to trade) rolls back to a
savepoint and is recorded as a `skipped` decision with the refusal's code.

Locking policy: the agent's row FOR UPDATE first (two runs of one agent, or a run and a
revocation, go one after the other), then what the order services lock (market/locks.py:
the book, then settlement accounts).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from ledger.services import ledger_append
from market import errors as market_errors
from market.agent_models import AgentDecision, TradingAgent
from market.agents import decision as rules
from market.agents import errors, events, selectors
from market.models import Market, Order
from market.services.orders import (
    MAX_QUANTITY_WH,
    _check_price,
    _require_acts_for,
    _trading_account,
    _whole,
    order_amend,
    order_cancel,
    order_place,
)
from market.slots import is_slot_market, slot_check_aligned
from registry.errors import DomainError

log = logging.getLogger(__name__)
MAX_HISTORY_DAYS = 60  # each day is two metering reads per run
Action = AgentDecision.Action


def _preferences(market: Market, values: dict[str, Any]) -> dict[str, int]:
    checked = {}
    for name in ("min_sell_price", "max_buy_price"):
        if name in values:
            checked[name] = _check_price(market, values[name], name=name)
    if "reserve_wh" in values:
        checked["reserve_wh"] = _whole(
            values["reserve_wh"],
            errors.InvalidAgentPreferences,
            low=0,
            high=MAX_QUANTITY_WH,
            name="reserve_wh",
        )
    if "history_days" in values:
        checked["history_days"] = _whole(
            values["history_days"],
            errors.InvalidAgentPreferences,
            low=1,
            high=MAX_HISTORY_DAYS,
            name="history_days",
        )
    return checked


def _locked_agent(actor: User | None, agent_id: Any) -> TradingAgent:
    """The agent FOR UPDATE; the actor (if any) must act for its organisation."""
    agent = (
        TradingAgent.objects.select_for_update(of=("self",))
        .select_related("market", "organisation")
        .filter(pk=agent_id)
        .first()
        if isinstance(agent_id, int) and not isinstance(agent_id, bool)
        else None
    )
    if agent is None:
        raise errors.AgentNotFound(agent_id=agent_id)
    if actor is not None:
        _require_acts_for(actor, agent.organisation, errors.AgentNotFound(agent_id=agent_id))
    return agent


@transaction.atomic
def agent_delegate(
    *,
    actor: User,
    market_id: int,
    account_id: int,
    min_sell_price: int,
    max_buy_price: int,
    reserve_wh: int = 0,
    history_days: int = 7,
    now: dt.datetime | None = None,
) -> TradingAgent:
    """Delegate trading in an energy market to an agent; record market_agent.delegated."""
    market = (
        Market.objects.filter(pk=market_id).first()
        if isinstance(market_id, int) and not isinstance(market_id, bool)
        else None
    )
    if market is None:
        raise market_errors.MarketNotFound(market_id=market_id)
    if not is_slot_market(market):
        raise errors.AgentMarketUnsupported(market_id=market.pk, kind=market.kind)
    account = _trading_account(actor, account_id)
    preferences = _preferences(
        market,
        {
            "min_sell_price": min_sell_price,
            "max_buy_price": max_buy_price,
            "reserve_wh": reserve_wh,
            "history_days": history_days,
        },
    )
    now = now or timezone.now()
    active = TradingAgent.objects.filter(
        organisation_id=account.organisation_id, market=market, status=TradingAgent.Status.ACTIVE
    )
    if active.exists():
        raise errors.AgentExists(agent_id=active.first().pk)
    try:
        with transaction.atomic():
            agent = TradingAgent.objects.create(
                organisation_id=account.organisation_id,
                market=market,
                account=account,
                delegated_by=actor,
                created_at=now,
                updated_at=now,
                **preferences,
            )
    except IntegrityError:  # a concurrent delegation won (market_agent_one_active)
        raise errors.AgentExists() from None
    ledger_append(
        kind=events.AGENT_DELEGATED,
        actor=actor,
        subject=[agent, market, ("organisation", agent.organisation_id)],
        data={"agent": events.agent_data(agent)},
    )
    return agent


@transaction.atomic
def agent_update(
    *, actor: User, agent_id: int, now: dt.datetime | None = None, **values: Any
) -> TradingAgent:
    """Change an active agent's preferences (from its next run); market_agent.updated."""
    unknown = set(values) - set(events.PREFERENCES)
    if unknown or not values:
        raise errors.InvalidAgentPreferences(
            fields={name: ["not a preference"] for name in sorted(unknown)}
            or {"min_sell_price": ["give at least one preference"]}
        )
    agent = _locked_agent(actor, agent_id)
    if agent.status != TradingAgent.Status.ACTIVE:
        raise errors.AgentRevoked(agent_id=agent.pk)
    checked = _preferences(agent.market, values)
    before = events.preferences_data(agent)
    for name, value in checked.items():
        setattr(agent, name, value)
    agent.updated_at = now or timezone.now()
    agent.save(update_fields=[*checked, "updated_at"])
    ledger_append(
        kind=events.AGENT_UPDATED,
        actor=actor,
        subject=[agent],
        data={"agent": events.agent_data(agent), "before": before},
    )
    return agent


def _open_orders(agent: TradingAgent, slot_start: dt.datetime | None = None) -> list[Order]:
    decisions = AgentDecision.objects.filter(agent=agent, order__isnull=False)
    if slot_start is not None:
        decisions = decisions.filter(slot_start=slot_start)
    return list(
        Order.objects.filter(
            pk__in=decisions.values("order_id"), status=Order.Status.OPEN
        ).order_by("pk")
    )


@transaction.atomic
def agent_revoke(
    *, actor: User, agent_id: int, now: dt.datetime | None = None
) -> tuple[TradingAgent, list[Order], list[Order]]:
    """Revoke an agent and cancel its open orders (those whose slot's gate has closed stay
    in the book: they clear as placed); market_agent.revoked. Returns the agent, the
    cancelled orders and the orders that stay."""
    agent = _locked_agent(actor, agent_id)
    if agent.status != TradingAgent.Status.ACTIVE:
        raise errors.AgentRevoked(agent_id=agent.pk)
    now = now or timezone.now()
    cancelled, staying = [], []
    for order in _open_orders(agent):
        try:
            cancelled.append(order_cancel(actor=actor, order_id=order.pk, now=now))
        except market_errors.GateClosed:
            staying.append(order)
    agent.status = TradingAgent.Status.REVOKED
    agent.revoked_at = agent.updated_at = now
    agent.revoked_by = actor
    agent.save(update_fields=["status", "revoked_at", "updated_at", "revoked_by"])
    ledger_append(
        kind=events.AGENT_REVOKED,
        actor=actor,
        subject=[agent, *cancelled, *staying],
        data={
            "agent": events.agent_data(agent),
            "cancelled_order_ids": [o.pk for o in cancelled],
            "staying_order_ids": [o.pk for o in staying],
        },
    )
    return agent, cancelled, staying


def _act(
    agent: TradingAgent, intent: rules.Intent, current: Order | None, slot: dt.datetime, now
) -> tuple[str, Order | None, Order | None]:
    """Bring the book to the intent: (action, order now held, order cancelled)."""
    actor, market = agent.delegated_by, agent.market  # the member who delegated
    if not intent.side:
        if current is None:
            return Action.NONE, None, None
        return Action.CANCELLED, None, order_cancel(actor=actor, order_id=current.pk, now=now)
    if current is not None and current.side == intent.side:
        if (current.limit_price, current.quantity_wh) == (intent.price, intent.quantity_wh):
            return Action.KEPT, current, None
        amended = order_amend(
            actor=actor,
            order_id=current.pk,
            limit_price=intent.price,
            quantity_wh=intent.quantity_wh,
            now=now,
        ).order
        return Action.AMENDED, amended, None
    cancelled = None
    if current is not None:
        cancelled = order_cancel(actor=actor, order_id=current.pk, now=now)
    placed = order_place(
        actor=actor,
        market_id=market.pk,
        side=intent.side,
        limit_price=intent.price,
        quantity_wh=intent.quantity_wh,
        account_id=agent.account_id,
        slot_start=slot,
        now=now,
    ).order
    return (Action.REPLACED if cancelled else Action.PLACED), placed, cancelled


@transaction.atomic
def agent_run_slot(
    *, agent_id: int, slot_start: dt.datetime, now: dt.datetime | None = None
) -> AgentDecision:
    """Forecast the slot, decide, and place, amend or cancel the agent's order for it;
    record the decision (market_agent.decided). A rerun for the same slot amends the
    order it placed, never a second one."""
    agent = _locked_agent(None, agent_id)
    if agent.status != TradingAgent.Status.ACTIVE:
        raise errors.AgentRevoked(agent_id=agent.pk)
    slot = slot_check_aligned(agent.market, slot_start)
    now = now or timezone.now()
    forecast = selectors.agent_slot_forecast(agent=agent, slot_start=slot)
    charge = selectors.agent_battery_charge(agent=agent)
    market = agent.market
    intent = rules.decide(
        forecast,
        preferences=rules.Preferences(agent.min_sell_price, agent.max_buy_price, agent.reserve_wh),
        band=rules.Band(market.price_min, market.price_max, market.min_quantity_wh),
        battery_charge_wh=charge,
        slots_left=slots_left_in_day(market, slot),
    )
    [current] = _open_orders(agent, slot)[-1:] or [None]
    reason, explanation = intent.reason, intent.explanation
    try:
        with transaction.atomic():
            action, order, cancelled = _act(agent, intent, current, slot, now)
    except DomainError as refused:
        action, order, cancelled = Action.SKIPPED, current, None
        reason = refused.code
        explanation += f" Refused by the order service ({refused.code}): {refused.detail}"
    decision = AgentDecision.objects.create(
        agent=agent,
        slot_start=slot,
        action=action,
        side=intent.side,
        quantity_wh=intent.quantity_wh,
        price=intent.price,
        production_wh=forecast.production_wh,
        consumption_wh=forecast.consumption_wh,
        battery_charge_wh=charge,
        reason=reason,
        explanation=explanation,
        order=order,
        cancelled_order=cancelled,
        decided_at=now,
    )
    touched = [o for o in (order, cancelled) if o is not None]
    ledger_append(
        kind=events.AGENT_DECIDED,
        actor=agent.delegated_by,
        subject=[agent, decision, *touched],
        data={"decision": events.decision_data(decision)},
    )
    return decision


def slots_left_in_day(market: Market, slot_start: dt.datetime) -> int:
    """The market's slots from `slot_start` to the end of its UTC day, this one included
    (a battery's day is a UTC day: its storage balancing contract runs day by day)."""
    start = slot_start.astimezone(dt.UTC)
    midnight = dt.datetime.combine(start.date(), dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1)
    return max(1, -(-(midnight - start) // dt.timedelta(minutes=market.slot_minutes)))


def next_open_slot(market: Market, now: dt.datetime) -> dt.datetime:
    """The first slot of the market whose gate closes after `now`."""
    length = market.slot_minutes * 60
    earliest = int(now.timestamp()) + market.gate_closure_minutes * 60 + 1
    return dt.datetime.fromtimestamp(-(-earliest // length) * length, tz=dt.UTC)


def agents_run_due(*, now: dt.datetime | None = None, force: bool = False) -> list[AgentDecision]:
    """Run every active agent for its market's next open slot, each in its own transaction;
    an agent that has decided for that slot already is left alone unless `force`."""
    now = now or timezone.now()
    decided = []
    for agent in selectors.agents_active().order_by("pk"):
        slot = next_open_slot(agent.market, now)
        if not force and AgentDecision.objects.filter(agent=agent, slot_start=slot).exists():
            continue
        try:
            decided.append(agent_run_slot(agent_id=agent.pk, slot_start=slot, now=now))
        except DomainError as exc:  # revoked meanwhile
            log.info("agent %s not run for %s: %s", agent.pk, slot.isoformat(), exc.code)
    return decided
