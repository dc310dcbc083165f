"""The trading agents page: my agents, delegate (agent_delegate), revoke (agent_revoke),
an agent's decisions with their explanations; only for people who may trade."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ledger.models import PendingEvent
from market.agent_models import TradingAgent
from market.agents import services as agent_services
from market.models import Order
from tests.market.factories import EnergyMarketFactory, MarketFactory, next_slot


@pytest.fixture
def market(db):
    return EnergyMarketFactory(code="energy-agents")


def _delegation(world, market, **extra):
    return {
        "market": market.pk,
        "account": world.buyer_account.pk,
        "min_sell_price": 3_000,
        "max_buy_price": 9_000,
        "reserve_wh": 0,
        "history_days": 7,
        **extra,
    }


def _agent(world, market) -> TradingAgent:
    return agent_services.agent_delegate(
        actor=world.users["buyer"],
        market_id=market.pk,
        account_id=world.buyer_account.pk,
        min_sell_price=3_000,
        max_buy_price=9_000,
    )


@pytest.mark.django_db
def test_a_trader_sees_their_agents_and_the_delegation_form(login, world, market):
    # given
    agent = _agent(world, market)
    # when
    response = login(world, "buyer").get(reverse("web:market-agents"))
    # then
    assert response.status_code == 200
    assert [a.pk for a in response.context["agents"]] == [agent.pk]
    body = response.content.decode()
    assert "energy-agents" in body and world.buyer_account.number in body
    assert f"Revoke agent {agent.pk}" in body
    assert reverse("web:market-agent-decisions", args=[agent.pk]) in body
    # only energy markets can be chosen
    MarketFactory(code="certs-agents")
    form = login(world, "buyer").get(reverse("web:market-agents")).context["form"]
    assert [c for c, _label in form.fields["market"].choices] == [market.pk]


@pytest.mark.django_db
def test_the_navigation_links_the_agents_page_for_traders_only(login, world):
    url = reverse("web:market-agents")
    assert f'href="{url}"' in login(world, "buyer").get(reverse("web:market")).content.decode()
    body = login(world, "auditor").get(reverse("web:audit")).content.decode()
    assert f'href="{url}"' not in body


@pytest.mark.django_db
def test_delegating_calls_the_service_and_records_its_event(login, world, market):
    # when
    response = login(world, "buyer").post(
        reverse("web:market-agent-delegate"), _delegation(world, market), follow=True
    )
    # then
    agent = TradingAgent.objects.get()
    assert (agent.market_id, agent.account_id, agent.status) == (
        market.pk,
        world.buyer_account.pk,
        TradingAgent.Status.ACTIVE,
    )
    assert (agent.min_sell_price, agent.max_buy_price, agent.delegated_by) == (
        3_000,
        9_000,
        world.users["buyer"],
    )
    assert PendingEvent.objects.filter(kind="market_agent.delegated").count() == 1
    assert f"Agent {agent.pk} now trades for you" in response.content.decode()


@pytest.mark.django_db
def test_a_refused_delegation_shows_its_code_and_writes_nothing(login, world, market):
    # given an active agent in this market already
    _agent(world, market)
    events = PendingEvent.objects.count()
    client = login(world, "buyer")
    # when: a second one, and one with a price outside the band
    second = client.post(reverse("web:market-agent-delegate"), _delegation(world, market))
    band = client.post(
        reverse("web:market-agent-delegate"),
        _delegation(world, market, max_buy_price=market.price_max + 1),
    )
    # then
    assert second.status_code == band.status_code == 200
    assert "(market_agent_exists)" in second.content.decode()
    assert "(price_outside_band)" in band.content.decode()
    assert TradingAgent.objects.count() == 1
    assert PendingEvent.objects.count() == events


@pytest.mark.django_db
def test_a_form_error_is_shown_on_the_form(login, world, market):
    response = login(world, "buyer").post(
        reverse("web:market-agent-delegate"), _delegation(world, market, history_days=61)
    )
    assert response.status_code == 200
    assert response.context["form"].errors["history_days"]
    assert TradingAgent.objects.count() == 0


@pytest.mark.django_db
def test_revoking_calls_the_service_and_records_its_event(login, world, market):
    # given an active agent
    agent = _agent(world, market)
    # when
    response = login(world, "buyer").post(
        reverse("web:market-agent-revoke", args=[agent.pk]), follow=True
    )
    # then
    agent.refresh_from_db()
    assert agent.status == TradingAgent.Status.REVOKED
    assert agent.revoked_by == world.users["buyer"]
    assert PendingEvent.objects.filter(kind="market_agent.revoked").count() == 1
    body = response.content.decode()
    assert f"Agent {agent.pk} revoked" in body
    assert f"Revoke agent {agent.pk}</button>" not in body
    # revoking again is the service's refusal, with its code
    again = login(world, "buyer").post(
        reverse("web:market-agent-revoke", args=[agent.pk]), follow=True
    )
    assert "(market_agent_revoked)" in again.content.decode()


@pytest.mark.django_db
def test_an_agents_decisions_are_listed_with_their_explanation(login, world, market):
    # given one run of the agent (no readings: no forecast, nothing to trade)
    agent = _agent(world, market)
    decision = agent_services.agent_run_slot(agent_id=agent.pk, slot_start=next_slot(market))
    # when
    response = login(world, "buyer").get(reverse("web:market-agent-decisions", args=[agent.pk]))
    # then
    assert response.status_code == 200
    assert [d.pk for d in response.context["decisions"]] == [decision.pk]
    body = response.content.decode()
    assert decision.explanation.split(".")[0] in body
    assert f"({decision.reason})" in body
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_another_organisations_agent_is_not_found(login, world, market):
    agent = _agent(world, market)
    response = login(world, "producer").get(reverse("web:market-agent-decisions", args=[agent.pk]))
    assert response.status_code == 404
    refused = login(world, "producer").post(
        reverse("web:market-agent-revoke", args=[agent.pk]), follow=True
    )
    assert "(market_agent_not_found)" in refused.content.decode()
    agent.refresh_from_db()
    assert agent.status == TradingAgent.Status.ACTIVE


@pytest.mark.django_db
def test_a_member_who_may_not_trade_is_refused_every_action(login, world, market):
    # given an agent of the buyer; the auditor reads everything but trades nothing
    agent = _agent(world, market)
    client = login(world, "auditor")
    # when / then: the market pages' usual refusal
    assert client.get(reverse("web:market-agents")).status_code == 403
    assert (
        client.post(reverse("web:market-agent-delegate"), _delegation(world, market)).status_code
        == 403
    )
    assert client.post(reverse("web:market-agent-revoke", args=[agent.pk])).status_code == 403
    assert client.get(reverse("web:market-agent-decisions", args=[agent.pk])).status_code == 403
    agent.refresh_from_db()
    assert agent.status == TradingAgent.Status.ACTIVE
    assert TradingAgent.objects.count() == 1


@pytest.mark.django_db
def test_the_agents_page_reads_in_russian(login, world, market):
    agent = _agent(world, market)
    agent_services.agent_run_slot(agent_id=agent.pk, slot_start=next_slot(market))
    client = login(world, "buyer")
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    # when
    page = client.get(reverse("web:market-agents"))
    decisions = client.get(reverse("web:market-agent-decisions", args=[agent.pk]))
    # then
    body = page.content.decode()
    assert "Торговые агенты" in body and "Делегировать" in body
    assert "Delegate trading to an agent" not in body
    assert "Недавние решения" in decisions.content.decode()


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_agent_pages_do_a_fixed_number_of_queries(login, world, market):
    # given one agent with one decision
    agent = _agent(world, market)
    agent_services.agent_run_slot(agent_id=agent.pk, slot_start=next_slot(market))
    client = login(world, "buyer")
    decisions_url = reverse("web:market-agent-decisions", args=[agent.pk])
    few = (_queries(client, reverse("web:market-agents")), _queries(client, decisions_url))
    # when: three more agents (one revoked) in other markets, and more decisions
    for _n in range(3):
        other = _agent(world, EnergyMarketFactory())
    agent_services.agent_revoke(actor=world.users["buyer"], agent_id=other.pk)
    for hours in (2, 3, 4):
        agent_services.agent_run_slot(
            agent_id=agent.pk, slot_start=next_slot(market, ahead=dt.timedelta(hours=hours))
        )
    # then
    many = (_queries(client, reverse("web:market-agents")), _queries(client, decisions_url))
    assert many == few
