"""The market's rows of the permission matrix (tests/registry/matrix.py)."""

import datetime as dt

from market import services
from market.agents import services as agent_services
from tests.factories import AccountFactory
from tests.market.factories import (
    EnergyMarketFactory,
    MarketFactory,
    deposit,
    next_slot,
    seller_with_bundles,
)
from tests.registry.matrix import Case, expect

PRODUCER_ACTS = {"producer_admin": 200, "producer_operator": 200}
PRODUCER_READS = {"producer_admin": 200, "producer_operator": 200, "producer_viewer": 200}
EVERYONE_READS = {**PRODUCER_READS, "issuing_body": 200, "auditor": 200}
# Placing an order on the producer's account: its admins and operators may, nobody else.
ORDER_ENTRY = expect(
    404,
    anonymous=401,
    producer_admin=201,
    producer_operator=201,
    producer_viewer=403,
    issuing_body=403,
    auditor=403,
)
NOT_YOURS = {
    "producer_viewer": "not_organisation_member",
    "issuing_body": "not_organisation_member",
    "auditor": "auditor_read_only",
    "other_admin": "order_not_found",
}


def _market_world(world):
    """The market's objects, made on first use: most of the matrix never needs them."""
    if hasattr(world, "market"):
        return world
    producer, other = world.orgs["producer"], world.orgs["other"]
    world.market = MarketFactory(operator=world.orgs["issuing_body"])
    world.market_account = AccountFactory(organisation=producer)
    world.other_account = AccountFactory(organisation=other)
    deposit(producer.pk, 100_000)
    deposit(other.pk, 100_000)
    # the producer's resting bid: EUR 40/MWh for 1 MWh
    bidder = world.users["producer_operator"]
    world.order = services.order_place(
        actor=bidder,
        market_id=world.market.pk,
        side="buy",
        limit_price=4_000,
        quantity_wh=1_000_000,
        account_id=world.market_account.pk,
    ).order
    world.settlement_account = world.order.settlement_account
    return world


def _trade(world):
    """The producer sells to the other organisation (made only by the cases that need it)."""
    _market_world(world)
    if not hasattr(world, "trade"):
        seller = seller_with_bundles(organisation=world.orgs["producer"], hours=1)
        services.order_place(
            actor=seller.user,
            market_id=world.market.pk,
            side="sell",
            limit_price=5_000,
            bundle_id=seller.bundles[0].pk,
        )
        world.trade = services.order_place(
            actor=world.users["other_admin"],
            market_id=world.market.pk,
            side="buy",
            limit_price=5_000,
            quantity_wh=100,
            account_id=world.other_account.pk,
        ).trades[0]
    return {"pk": world.trade.pk}


def _bid(world, role):
    _market_world(world)
    return {
        "market": world.market.pk,
        "side": "buy",
        "limit_price": 3_000,
        "quantity_wh": 1_000,
        "account": world.market_account.pk,
        "criteria": {"technology_code": "T020001"},
    }


def _energy_world(world):
    """An energy market with one cleared slot (the producer's bid in it)."""
    _market_world(world)
    if not hasattr(world, "energy_market"):
        world.energy_market = EnergyMarketFactory(operator=world.orgs["issuing_body"])
        world.slot = next_slot(world.energy_market)
        cleared = world.slot + dt.timedelta(hours=1)  # a slot of its own, cleared early
        services.order_place(
            actor=world.users["producer_operator"],
            market_id=world.energy_market.pk,
            side="buy",
            limit_price=4_000,
            quantity_wh=1_000,
            account_id=world.market_account.pk,
            slot_start=cleared,
        )
        world.clearing = services.slot_clear(
            market_id=world.energy_market.pk, slot_start=cleared, now=cleared
        )
    return world


def _energy_bid(world, role):
    _energy_world(world)
    return {
        "market": world.energy_market.pk,
        "side": "buy",
        "limit_price": 3_000,
        "quantity_wh": 1_000,
        "account": world.market_account.pk,
        "slot_start": world.slot.isoformat(),
    }


def _money(world, role):
    _market_world(world)
    return {
        "organisation": world.orgs["producer"].pk,
        "currency": "EUR",
        "amount_minor": 500,
        "reference": "bank-ref-1",
    }


def _agent_world(world):
    """The producer's trading agent in the energy market, delegated by its operator."""
    _energy_world(world)
    if not hasattr(world, "agent"):
        world.agent = agent_services.agent_delegate(
            actor=world.users["producer_operator"],
            market_id=world.energy_market.pk,
            account_id=world.market_account.pk,
            min_sell_price=3_000,
            max_buy_price=9_000,
        )
    return world


def _delegation(world, role):
    _energy_world(world)
    return {
        "market": world.energy_market.pk,
        "account": world.market_account.pk,
        "min_sell_price": 3_000,
        "max_buy_price": 9_000,
    }


AGENT_ACTS = expect(
    404, anonymous=401, producer_viewer=403, issuing_body=403, auditor=403, **PRODUCER_ACTS
)
AGENT_NOT_YOURS = {**NOT_YOURS, "other_admin": "market_agent_not_found"}
_agent = lambda w: {"pk": _agent_world(w).agent.pk}  # noqa: E731
_order = lambda w: {"pk": _market_world(w).order.pk}  # noqa: E731
_market = lambda w: {"pk": _market_world(w).market.pk}  # noqa: E731
_account = lambda w: {"pk": _market_world(w).settlement_account.pk}  # noqa: E731

CASES = [
    Case("GET", "/api/v1/market/markets/", expect(200)),
    Case("GET", "/api/v1/market/markets/{pk}/", expect(200), args=_market),
    Case("GET", "/api/v1/market/markets/{pk}/book/", expect(200), args=_market),
    Case("GET", "/api/v1/market/orders/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/market/orders/{pk}/",
        expect(404, anonymous=401, **EVERYONE_READS),
        name="the producer's bid",
        args=_order,
    ),
    Case(
        "POST",
        "/api/v1/market/orders/",
        ORDER_ENTRY,
        name="a bid for the producer's account",
        body=_bid,
        codes={**NOT_YOURS, "other_admin": "account_not_found"},
    ),
    Case(
        "POST",
        "/api/v1/market/orders/{pk}/cancel/",
        expect(
            404, anonymous=401, producer_viewer=403, issuing_body=403, auditor=403, **PRODUCER_ACTS
        ),
        name="the producer's bid",
        args=_order,
        codes=NOT_YOURS,
    ),
    Case(
        "POST",
        "/api/v1/market/orders/{pk}/amend/",
        expect(
            404, anonymous=401, producer_viewer=403, issuing_body=403, auditor=403, **PRODUCER_ACTS
        ),
        name="the producer's bid",
        args=_order,
        body=lambda w, role: {"limit_price": 3_500},
        codes=NOT_YOURS,
    ),
    Case(
        "POST",
        "/api/v1/market/orders/",
        ORDER_ENTRY,
        name="an energy bid for the producer's account",
        body=_energy_bid,
        codes={**NOT_YOURS, "other_admin": "account_not_found"},
    ),
    Case("GET", "/api/v1/market/clearings/", expect(200)),
    Case(
        "GET",
        "/api/v1/market/clearings/{pk}/",
        expect(200),
        name="a cleared energy slot (public)",
        args=lambda w: {"pk": _energy_world(w).clearing.pk},
    ),
    Case(
        "GET",
        "/api/v1/market/clearings/{pk}/settlement/",
        expect(404),
        name="a cleared slot not settled yet (public: 404 for everyone)",
        args=lambda w: {"pk": _energy_world(w).clearing.pk},
        codes={"anonymous": "slot_settlement_not_found"},
    ),
    Case(
        "POST",
        "/api/v1/market/clearings/{pk}/settle/",
        expect(403, anonymous=401, issuing_body=409),
        name="settle a slot that has not ended (operator: 409)",
        args=lambda w: {"pk": _energy_world(w).clearing.pk},
        codes={
            "producer_admin": "not_market_operator",
            "auditor": "auditor_read_only",
            "issuing_body": "slot_not_delivered",
        },
    ),
    Case("GET", "/api/v1/market/trades/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/market/trades/{pk}/",
        expect(404, anonymous=401, other_admin=200, **EVERYONE_READS),
        name="the producer sold to the other organisation",
        args=_trade,
    ),
    Case("GET", "/api/v1/market/settlement-accounts/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/market/settlement-accounts/{pk}/",
        expect(404, anonymous=401, **EVERYONE_READS),
        name="the producer's euros",
        args=_account,
    ),
    Case(
        "GET",
        "/api/v1/market/settlement-accounts/{pk}/journal/",
        expect(404, anonymous=401, **EVERYONE_READS),
        name="the producer's euros",
        args=_account,
    ),
    Case(
        "POST",
        "/api/v1/market/deposits/",
        expect(403, anonymous=401, issuing_body=201),
        body=_money,
        codes={"producer_admin": "not_market_operator", "auditor": "auditor_read_only"},
    ),
    Case(
        "POST",
        "/api/v1/market/withdrawals/",
        expect(403, anonymous=401, issuing_body=201),
        body=_money,
        codes={"other_admin": "not_market_operator", "auditor": "auditor_read_only"},
    ),
    Case("GET", "/api/v1/market/agents/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/market/agents/{pk}/",
        expect(404, anonymous=401, **EVERYONE_READS),
        name="the producer's trading agent",
        args=_agent,
    ),
    Case(
        "GET",
        "/api/v1/market/agents/{pk}/decisions/",
        expect(404, anonymous=401, **EVERYONE_READS),
        name="the producer's trading agent",
        args=_agent,
    ),
    Case(
        "POST",
        "/api/v1/market/agents/",
        ORDER_ENTRY,
        name="an agent for the producer's account",
        body=_delegation,
        codes={**NOT_YOURS, "other_admin": "account_not_found"},
    ),
    Case(
        "PATCH",
        "/api/v1/market/agents/{pk}/",
        AGENT_ACTS,
        name="the producer's trading agent",
        args=_agent,
        body=lambda w, role: {"max_buy_price": 8_000},
        codes=AGENT_NOT_YOURS,
    ),
    Case(
        "POST",
        "/api/v1/market/agents/{pk}/revoke/",
        AGENT_ACTS,
        name="the producer's trading agent (no open orders)",
        args=_agent,
        codes=AGENT_NOT_YOURS,
    ),
]
