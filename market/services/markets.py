"""Markets: the issuing body opens one (code, currency, price band, fee, operator)."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.errors import NotIssuingBody, OrganisationNotFound
from accounts.models import Organisation, User
from accounts.permissions import user_is_issuing_body
from assets.models import GridArea
from ledger.services import ledger_append
from market import errors, events
from market.models import Market, OrderBook
from market.services.money import currency_check
from market.services.orders import MAX_PRICE

CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@transaction.atomic
def market_create(
    *,
    actor: User | str,
    code: str,
    name: str,
    currency: str,
    operator_id: int,
    price_min: int,
    price_max: int,
    fee_bps: int = 0,
    min_quantity_wh: int = 1,
    kind: str = Market.Kind.CERTIFICATES,
    matching: str = Market.Matching.CONTINUOUS,
    slot_minutes: int = 15,
    gate_closure_minutes: int = 5,
    grid_area_id: int | None = None,
    fallback_buy_price: int = 0,
    fallback_sell_price: int = 0,
    grid_fee_per_mwh: int = 0,
    settlement_grace_minutes: int = 1440,
) -> Market:
    """Open a market with its empty book (energy markets: with slot length and gate closure)."""
    if isinstance(actor, str):
        if not actor.startswith("system"):
            raise NotIssuingBody()
    elif not user_is_issuing_body(actor):
        raise NotIssuingBody()
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise errors.InvalidOrder("The market code is lower-case letters, digits and dashes.")
    if Market.objects.filter(code=code).exists():
        raise errors.MarketExists(code=code)
    currency = currency_check(currency)
    operator = Organisation.objects.filter(pk=operator_id).first()
    if operator is None:
        raise OrganisationNotFound(organisation_id=operator_id)
    if kind not in Market.Kind.values or matching not in Market.Matching.values:
        raise errors.InvalidOrder(fields={"kind": Market.Kind.values})

    def whole(value: Any, high: int) -> bool:
        return not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= high

    if not (whole(price_min, MAX_PRICE) and whole(price_max, MAX_PRICE) and price_min <= price_max):
        raise errors.InvalidPrice(price_min=price_min, price_max=price_max)
    if not whole(fee_bps, 10_000) or not whole(min_quantity_wh, 10**12) or not min_quantity_wh:
        raise errors.InvalidOrder(fields={"fee_bps": ["0 to 10000"], "min_quantity_wh": [">= 1"]})
    if not whole(slot_minutes, 1440) or not slot_minutes or 1440 % slot_minutes:
        raise errors.InvalidOrder(fields={"slot_minutes": ["a whole divisor of a day's 1440"]})
    if not whole(gate_closure_minutes, 1440):
        raise errors.InvalidOrder(fields={"gate_closure_minutes": ["0 to 1440"]})
    fallback = (fallback_buy_price, fallback_sell_price, grid_fee_per_mwh)
    if not all(whole(value, MAX_PRICE) for value in fallback):
        raise errors.InvalidPrice(
            fallback_buy_price=fallback_buy_price,
            fallback_sell_price=fallback_sell_price,
            grid_fee_per_mwh=grid_fee_per_mwh,
        )
    if not whole(settlement_grace_minutes, 10 * 1440):
        raise errors.InvalidOrder(fields={"settlement_grace_minutes": ["0 to 14400"]})
    if grid_area_id is not None and (
        kind != Market.Kind.ENERGY or not GridArea.objects.filter(pk=grid_area_id).exists()
    ):
        raise errors.InvalidOrder(fields={"grid_area_id": ["an energy market's grid area"]})
    market = Market.objects.create(
        code=code,
        name=name,
        kind=kind,
        matching=matching,
        currency=currency,
        operator=operator,
        fee_bps=fee_bps,
        price_min=price_min,
        price_max=price_max,
        min_quantity_wh=min_quantity_wh,
        slot_minutes=slot_minutes,
        gate_closure_minutes=gate_closure_minutes,
        grid_area_id=grid_area_id,
        fallback_buy_price=fallback_buy_price,
        fallback_sell_price=fallback_sell_price,
        grid_fee_per_mwh=grid_fee_per_mwh,
        settlement_grace_minutes=settlement_grace_minutes,
        created_at=timezone.now(),
    )
    OrderBook.objects.create(market=market)
    ledger_append(
        kind=events.MARKET_CREATED,
        actor=actor,
        subject=[market, operator],
        data=events.market_data(market),
    )
    return market
