"""Real threads against PostgreSQL: concurrent runs of one agent for one slot leave one
order, a run racing the agent's revocation leaves no open order behind, and concurrent
delegations make one active agent."""

import pytest

from market.agent_models import AgentDecision, TradingAgent
from market.agents import services
from market.models import Order
from market.replay import replay_market
from tests.certificates.conftest import run_together
from tests.conftest import requires_postgres
from tests.market.agent_support import HOUR, delegate, history
from tests.market.factories import EnergyMarketFactory, next_slot, trader

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_runs_for_one_slot_place_one_order():
    # given a household agent with a deficit in the slot
    market = EnergyMarketFactory()
    slot = next_slot(market)
    household = trader(100_000)
    history(household, slot, produced=None, consumed=600)
    agent = delegate(market, household)

    # when four runs for the slot start at once
    results = run_together(
        lambda i: services.agent_run_slot(agent_id=agent.pk, slot_start=slot, now=slot - HOUR), 4
    )

    # then one placed the bid and the others kept it
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(r.action for r in results) == ["kept", "kept", "kept", "placed"]
    [order] = Order.objects.filter(organisation=household.account.organisation)
    assert (order.status, order.quantity_wh) == ("open", 600)
    assert replay_market().ok


def test_a_run_racing_the_revocation_leaves_no_open_order():
    for _ in range(3):
        market = EnergyMarketFactory()
        slot = next_slot(market)
        household = trader(100_000)
        history(household, slot, produced=None, consumed=600)
        agent = delegate(market, household)

        def work(i, agent=agent, slot=slot, who=household):
            if i == 0:
                return services.agent_run_slot(agent_id=agent.pk, slot_start=slot, now=slot - HOUR)
            return services.agent_revoke(actor=who.user, agent_id=agent.pk, now=slot - HOUR)

        results = run_together(work, 2)

        # either the run came first (and revocation cancelled its bid) or it was refused
        assert TradingAgent.objects.get(pk=agent.pk).status == "revoked"
        run = results[0]
        if isinstance(run, Exception):
            assert run.code == "market_agent_revoked"
            assert not AgentDecision.objects.filter(agent=agent).exists()
        assert not Order.objects.filter(
            organisation=household.account.organisation, status="open"
        ).exists()
    assert replay_market().ok


def test_concurrent_delegations_make_one_active_agent():
    market = EnergyMarketFactory()
    household = trader()

    results = run_together(lambda i: delegate(market, household), 4)

    errors = [r for r in results if isinstance(r, Exception)]
    assert {e.code for e in errors} == {"market_agent_exists"}
    assert len(errors) == 3
    assert TradingAgent.objects.filter(status="active").count() == 1
