"""Helpers of the trading agent suites: an organisation with meters and a readings history
in the same slot of the day, and its agent."""

import datetime as dt

from assets.models import Meter
from market.agent_models import TradingAgent
from market.agents import services
from tests.market.delivery_support import meter_for, read

HOUR = dt.timedelta(hours=1)


def history(who, slot: dt.datetime, *, produced: int | None, consumed: int | None, days=7, slots=1):
    """Readings of the same slot (and the `slots` - 1 after it) on each of the `days` days
    before `slot`, on a new generation and a new consumption meter."""
    meters = []
    if produced is not None:
        meters.append((meter_for(who, Meter.Kind.GENERATION), produced))
    if consumed is not None:
        meters.append((meter_for(who, Meter.Kind.CONSUMPTION), consumed))
    for meter, wh in meters:
        for n in range(1, days + 1):
            for k in range(slots):
                read(meter, slot - dt.timedelta(days=n) + k * dt.timedelta(minutes=15), wh)


def delegate(market, who, *, min_sell=1_000, max_buy=50_000, **kw) -> TradingAgent:
    return services.agent_delegate(
        actor=who.user,
        market_id=market.pk,
        account_id=who.account.pk,
        min_sell_price=min_sell,
        max_buy_price=max_buy,
        **kw,
    )


def run(agent, slot, *, now=None):
    return services.agent_run_slot(agent_id=agent.pk, slot_start=slot, now=now or slot - HOUR)
