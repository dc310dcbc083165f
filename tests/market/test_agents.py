"""Trading agents: delegation, a run per slot through the ordinary order services
(idempotent per slot), refusals recorded as skipped decisions, revocation cancelling the
agent's orders, and an agent seller and an agent buyer cleared against each other."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from contracts.models import StorageState
from market import services as market_services
from market.agent_models import AgentDecision, TradingAgent
from market.agents import services
from market.models import Order, SettlementAccount
from tests.certificates.factories import DeviceFactory
from tests.market.agent_support import delegate, history, run
from tests.market.conftest import snapshot
from tests.market.factories import EnergyMarketFactory, MarketFactory, next_slot, trader
from tests.registry.support import events_since, last_event_id, row_counts

pytestmark = pytest.mark.django_db
MINUTE = dt.timedelta(minutes=1)


def refused(code, call):
    before, rows, event = snapshot(), row_counts(TradingAgent, AgentDecision), last_event_id()
    with pytest.raises(Exception) as caught:
        call()
    assert getattr(caught.value, "code", None) == code, caught.value
    assert (snapshot(), row_counts(TradingAgent, AgentDecision)) == (before, rows)
    assert events_since(event) == []


# ---------------------------------------------------------------- delegation


def test_delegating_records_the_agent_and_its_preferences():
    # given
    market = EnergyMarketFactory()
    prosumer = trader()
    before = last_event_id()

    # when
    agent = delegate(market, prosumer, min_sell=4_000, max_buy=9_000, reserve_wh=500)

    # then
    assert (agent.status, agent.min_sell_price, agent.max_buy_price, agent.reserve_wh) == (
        "active",
        4_000,
        9_000,
        500,
    )
    [event] = events_since(before)
    assert event["type"] == "market_agent.delegated"
    assert f"market_agent:{agent.pk}" in event["subject"]
    assert event["data"]["agent"]["min_sell_price"] == 4_000


def test_delegation_refusals_change_nothing():
    market = EnergyMarketFactory(price_min=1_000, price_max=50_000)
    me, other = trader(), trader()
    refused("price_outside_band", lambda: delegate(market, me, min_sell=60_000))
    refused("invalid_price", lambda: delegate(market, me, max_buy=-1))
    refused("invalid_agent_preferences", lambda: delegate(market, me, history_days=0))
    refused(
        "account_not_found",
        lambda: services.agent_delegate(
            actor=me.user,
            market_id=market.pk,
            account_id=other.account.pk,
            min_sell_price=1_000,
            max_buy_price=2_000,
        ),
    )
    refused("market_agent_market_unsupported", lambda: delegate(MarketFactory(), me))
    refused("market_not_found", lambda: delegate(type("M", (), {"pk": 10**9})(), me))
    delegate(market, me)
    refused("market_agent_exists", lambda: delegate(market, me))


def test_only_the_organisations_traders_update_and_a_revoked_agent_is_not_updated():
    market = EnergyMarketFactory()
    me, other = trader(), trader()
    agent = delegate(market, me)
    refused(
        "market_agent_not_found",
        lambda: services.agent_update(actor=other.user, agent_id=agent.pk, min_sell_price=5),
    )
    refused(
        "invalid_agent_preferences",
        lambda: services.agent_update(actor=me.user, agent_id=agent.pk, colour="red"),
    )
    before = last_event_id()
    services.agent_update(actor=me.user, agent_id=agent.pk, min_sell_price=2_500)
    [event] = events_since(before)
    assert (event["type"], event["data"]["before"]["min_sell_price"]) == (
        "market_agent.updated",
        1_000,
    )
    services.agent_revoke(actor=me.user, agent_id=agent.pk)
    refused(
        "market_agent_revoked",
        lambda: services.agent_update(actor=me.user, agent_id=agent.pk, min_sell_price=5),
    )
    refused("market_agent_revoked", lambda: run(agent, next_slot(market)))


# ---------------------------------------------------------------- a run


def test_a_prosumer_agent_offers_its_forecast_surplus_as_an_ordinary_order():
    # given a week of 1,000 Wh produced and 200 Wh consumed in the slot's time of day
    market = EnergyMarketFactory()
    slot = next_slot(market)
    prosumer = trader()
    history(prosumer, slot, produced=1_000, consumed=200)
    agent = delegate(market, prosumer, min_sell=4_000)
    before = last_event_id()

    # when
    decision = run(agent, slot)

    # then an offer of 800 Wh at the minimum sell price, placed as the member who delegated
    order = decision.order
    assert (decision.action, decision.side, decision.quantity_wh, decision.price) == (
        "placed",
        "sell",
        800,
        4_000,
    )
    assert (decision.production_wh, decision.consumption_wh, decision.reason) == (
        1_000,
        200,
        "surplus",
    )
    assert "1000 Wh produced, 200 Wh consumed" in decision.explanation
    assert (order.side, order.quantity_wh, order.limit_price, order.slot_start) == (
        "sell",
        800,
        4_000,
        slot,
    )
    assert order.placed_by_id == prosumer.user.pk
    placed, decided = events_since(before)
    assert placed["type"] == "order.placed"
    assert decided["type"] == "market_agent.decided"
    assert {f"market_agent:{agent.pk}", f"agent_decision:{decision.pk}", f"order:{order.pk}"} <= (
        set(decided["subject"])
    )


def test_a_rerun_keeps_or_amends_its_order_and_never_places_a_second():
    # given a placed offer
    market = EnergyMarketFactory()
    slot = next_slot(market)
    prosumer = trader()
    history(prosumer, slot, produced=1_000, consumed=200)
    agent = delegate(market, prosumer)
    first = run(agent, slot)

    # when it runs again unchanged, then with a new minimum sell price
    kept = run(agent, slot)
    services.agent_update(actor=prosumer.user, agent_id=agent.pk, min_sell_price=7_000)
    amended = run(agent, slot)

    # then
    assert (kept.action, kept.order_id) == ("kept", first.order_id)
    assert (amended.action, amended.order_id) == ("amended", first.order_id)
    orders = Order.objects.filter(organisation=prosumer.account.organisation)
    assert [(o.status, o.limit_price) for o in orders] == [("open", 7_000)]


def test_a_consumer_agent_that_would_now_sell_replaces_its_bid():
    market = EnergyMarketFactory()
    slot = next_slot(market)
    household = trader(100_000)
    history(household, slot, produced=None, consumed=600)
    agent = delegate(market, household, max_buy=20_000)
    bid = run(agent, slot)
    assert (bid.action, bid.side, bid.quantity_wh, bid.price) == ("placed", "buy", 600, 20_000)
    assert SettlementAccount.objects.get(organisation=household.account.organisation).reserved

    # when panels are installed and a week of production shows a surplus
    history(household, slot, produced=1_000, consumed=None)
    replaced = run(agent, slot)

    # then the bid is cancelled (escrow released) and an offer placed
    assert (replaced.action, replaced.side, replaced.quantity_wh) == ("replaced", "sell", 400)
    assert replaced.cancelled_order_id == bid.order_id
    assert Order.objects.get(pk=bid.order_id).status == "cancelled"
    assert SettlementAccount.objects.get(organisation=household.account.organisation).reserved == 0


def test_nothing_to_trade_cancels_the_agents_order():
    market = EnergyMarketFactory()
    slot = next_slot(market)
    household = trader(100_000)
    history(household, slot, produced=None, consumed=600)
    agent = delegate(market, household)
    bid = run(agent, slot)
    history(household, slot, produced=600, consumed=None)

    decision = run(agent, slot)

    assert (decision.action, decision.reason, decision.cancelled_order_id) == (
        "cancelled",
        "balanced",
        bid.order_id,
    )
    assert Order.objects.get(pk=bid.order_id).status == "cancelled"


def test_without_history_the_agent_does_nothing():
    market = EnergyMarketFactory()
    agent = delegate(market, trader())
    decision = run(agent, next_slot(market))
    assert (decision.action, decision.reason, decision.order_id) == ("none", "no_history", None)


def test_order_service_refusals_become_skipped_decisions():
    # given a household without funds, and a slot whose gate has closed
    market = EnergyMarketFactory()
    slot = next_slot(market)
    poor = trader(0)
    history(poor, slot, produced=None, consumed=600)
    agent = delegate(market, poor)
    before = last_event_id()

    # when
    broke = run(agent, slot)
    late = run(agent, slot, now=slot - MINUTE)

    # then no order, two recorded decisions with the refusals' codes
    assert (broke.action, broke.reason, broke.order_id) == ("skipped", "insufficient_funds", None)
    assert (late.action, late.reason) == ("skipped", "gate_closed")
    assert "Refused by the order service (insufficient_funds)" in broke.explanation
    assert not Order.objects.filter(organisation=poor.account.organisation).exists()
    assert [e["type"] for e in events_since(before)] == ["market_agent.decided"] * 2


def test_a_member_who_lost_the_right_to_trade_makes_the_agent_skip():
    market = EnergyMarketFactory()
    slot = next_slot(market)
    household = trader(100_000)
    history(household, slot, produced=None, consumed=600)
    agent = delegate(market, household)
    household.user.memberships.all().delete()

    decision = run(agent, slot)

    assert (decision.action, decision.reason) == ("skipped", "account_not_found")


def test_the_battery_above_its_reserve_is_offered_and_never_below_it():
    # given 500 Wh surplus and a battery holding 3,000 Wh with a 2,000 Wh reserve
    market = EnergyMarketFactory()
    slot = next_slot(market)
    prosumer = trader()
    history(prosumer, slot, produced=700, consumed=200)
    StorageState.objects.create(
        device=DeviceFactory(organisation=prosumer.account.organisation),
        soc_wh=3_000,
        capacity_wh=10_000,
        updated_at=timezone.now(),
    )
    agent = delegate(market, prosumer, reserve_wh=2_000)

    # when
    decision = run(agent, slot)

    # then the 500 Wh surplus and this slot's even share of the 1,000 Wh above the reserve
    # over the slots left in the day are offered (never the whole 1,000 in every slot)
    left = services.slots_left_in_day(market, slot)
    assert 1 <= left <= 96
    assert (decision.side, decision.quantity_wh, decision.battery_charge_wh) == (
        "sell",
        500 + 1_000 // left,
        3_000,
    )
    assert "reserve of 2000 Wh" in decision.explanation
    assert f"spread over the {left} slot" in decision.explanation


def test_the_slots_left_in_the_day_count_the_slot_itself_to_utc_midnight():
    market = EnergyMarketFactory.build(slot_minutes=15)
    day = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    assert services.slots_left_in_day(market, day) == 96
    assert services.slots_left_in_day(market, day + dt.timedelta(hours=23, minutes=45)) == 1
    assert services.slots_left_in_day(market, day + dt.timedelta(hours=11)) == 52


# ---------------------------------------------------------------- revocation


def test_revoking_cancels_the_agents_open_orders_in_the_same_transaction():
    # given an agent's bid for one slot, and a bid of another slot whose gate has closed
    market = EnergyMarketFactory()
    slot = next_slot(market)
    household = trader(100_000)
    history(household, slot, produced=None, consumed=600)
    agent = delegate(market, household)
    bid = run(agent, slot).order
    own = market_services.order_place(
        actor=household.user,
        market_id=market.pk,
        side="buy",
        limit_price=1_000,
        quantity_wh=100,
        account_id=household.account.pk,
        slot_start=slot,
    ).order
    before = last_event_id()

    # when
    revoked, cancelled, staying = services.agent_revoke(actor=household.user, agent_id=agent.pk)

    # then only the agent's order is cancelled, its escrow released, and the event names it
    assert (revoked.status, [o.pk for o in cancelled], staying) == ("revoked", [bid.pk], [])
    assert Order.objects.get(pk=bid.pk).status == "cancelled"
    assert Order.objects.get(pk=own.pk).status == "open"
    kinds = [e["type"] for e in events_since(before)]
    assert kinds == ["order.cancelled", "market_agent.revoked"]
    event = events_since(before)[-1]
    assert {f"market_agent:{agent.pk}", f"order:{bid.pk}"} <= set(event["subject"])
    assert event["data"]["cancelled_order_ids"] == [bid.pk]


def test_an_order_past_its_gate_stays_when_the_agent_is_revoked():
    market = EnergyMarketFactory()
    slot = next_slot(market, ahead=dt.timedelta(minutes=7))
    household = trader(100_000)
    history(household, slot, produced=None, consumed=600)
    agent = delegate(market, household)
    bid = run(agent, slot, now=timezone.now()).order

    _, cancelled, staying = services.agent_revoke(
        actor=household.user, agent_id=agent.pk, now=slot - MINUTE
    )

    assert (cancelled, [o.pk for o in staying]) == ([], [bid.pk])
    assert Order.objects.get(pk=bid.pk).status == "open"


# ---------------------------------------------------------------- the periodic run


def test_the_periodic_run_decides_once_per_agent_and_slot():
    market = EnergyMarketFactory()
    household = trader(100_000)
    agent = delegate(market, household)
    now = timezone.now()

    first = services.agents_run_due(now=now)
    again = services.agents_run_due(now=now)
    forced = services.agents_run_due(now=now, force=True)

    assert [d.agent_id for d in first] == [agent.pk]
    assert again == []
    assert [d.slot_start for d in forced] == [first[0].slot_start]


def test_the_scheduled_task_runs_the_agents_for_the_next_open_slot(settings):
    from registry.celery import app

    market = EnergyMarketFactory()
    slot = services.next_open_slot(market, timezone.now())
    household = trader(100_000)
    # the next slot too: the task reads the clock again, maybe past this slot's gate
    history(household, slot, produced=None, consumed=600, slots=2)
    agent = delegate(market, household)

    entry = settings.CELERY_BEAT_SCHEDULE["market-agents-run"]
    app.loader.import_default_modules()
    assert app.tasks[entry["task"]].apply().get() == 1

    [decision] = AgentDecision.objects.filter(agent=agent)
    assert (decision.action, decision.quantity_wh, decision.order.status) == ("placed", 600, "open")


def test_the_management_command_runs_the_agents(capsys):
    market = EnergyMarketFactory()
    delegate(market, trader())
    call_command("run_agents")
    assert "1 agent decision(s)." in capsys.readouterr().out


# ---------------------------------------------------------------- end to end


def test_an_agent_seller_and_an_agent_buyer_clear_against_each_other():
    # given a prosumer with a surplus and a household with a deficit, each with an agent
    market = EnergyMarketFactory()
    slot = next_slot(market)
    prosumer, household = trader(), trader(100_000)
    history(prosumer, slot, produced=2_000, consumed=500)
    history(household, slot, produced=None, consumed=1_000)
    seller = delegate(market, prosumer, min_sell=3_000)
    buyer = delegate(market, household, max_buy=8_000)

    # when both run and the slot clears
    offer = run(seller, slot).order
    bid = run(buyer, slot).order
    clearing = market_services.slot_clear(
        market_id=market.pk, slot_start=slot, now=slot - 4 * MINUTE
    )

    # then the household's 1,000 Wh cleared against the prosumer's 1,500 Wh offer
    offer.refresh_from_db()
    bid.refresh_from_db()
    assert clearing.volume_wh == 1_000
    assert 3_000 <= clearing.price <= 8_000
    assert (bid.status, bid.filled_wh) == ("cleared", 1_000)
    assert (offer.status, offer.filled_wh) == ("partially_cleared", 1_000)
