"""Orders: place, amend, cancel; each match is settled in the same transaction.

One transaction per call, one ledger event (`order.placed`, `order.amended`,
`order.cancelled`) naming every object it changed: the orders, the trades, the bundles
(through the certificates app's reservation service), the certificate accounts and the
settlement accounts, with the journal entries.

Energy markets (`kind=energy`, `matching=uniform`) take orders for a delivery slot until
its gate closes and match nothing on entry: the slot is cleared at one price by
`market.services.slots.slot_clear`. A bid escrows funds at its limit, an offer reserves
nothing (delivery is settled later from meter data). The gate is checked with the time
taken after the book lock, and against the slot's `SlotClearing` row, so an order racing
the clearing either makes it into the slot or is refused `gate_closed`.

Locking policy (market/locks.py): the market's book row first, FOR UPDATE, for the
whole transaction, so the book is read and changed by one writer at a time; the
incoming offer's bundle (reserved by the certificates service); then every settlement
account the operation touches, at once, in pk order, after the match is known; then
the makers' bundles as they are delivered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.errors import AccountNotFound, AuditorReadOnly, NotOrganisationMember
from accounts.models import Account, Membership, Organisation, User
from accounts.permissions import (
    user_can_act_for,
    user_is_auditor,
    user_organisation_ids,
    user_reads_everything,
)
from certificates.models import Bundle
from ledger.services import ledger_append
from market import engine_io, errors, events, matching, storage
from market.locks import book_lock, book_seq_take, member_accounts_lock, settlement_accounts_lock
from market.models import (
    JournalEntry,
    Market,
    Order,
    OrderBook,
    SettlementAccount,
    Trade,
)
from market.retire_claim import retire_claim_set
from market.services.money import AVAILABLE, RESERVED, Journal, settlement_account_ensure
from market.slots import check_gate_open, is_slot_market, slot_check_aligned
from market.units import UnitsLog, units_deliver, units_release, units_reserve
from registry import model_rows as rows
from registry.deferred_writes import deferred_writes
from registry.errors import OrganisationNotApproved

MAX_QUANTITY_WH = 10**12  # 1 TWh in one order
MAX_PRICE = 10**9  # minor units per MWh
OPEN = Order.Status.OPEN
_ACTING_ROLES = (Membership.Role.OPERATOR, Membership.Role.ADMIN)


@dataclass
class Placement:
    """The order after the call and the trades it made."""

    order: Order
    trades: list[Trade] = field(default_factory=list)


# ---------------------------------------------------------------- input checks


def _whole(value: Any, error: type[Exception], *, low: int, high: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise error(**{name: str(value)[:32]})
    return value


def _check_price(market: Market, price: Any, *, name: str = "limit_price") -> int:
    """A price in the market's band; the errors' `extra` names it `name` (the field given)."""
    price = _whole(price, errors.InvalidPrice, low=0, high=MAX_PRICE, name=name)
    if not market.price_min <= price <= market.price_max:
        raise errors.PriceOutsideBand(
            **{name: price}, price_min=market.price_min, price_max=market.price_max
        )
    return price


def _check_quantity(market: Market, quantity: Any, *, low: int | None = None) -> int:
    low = market.min_quantity_wh if low is None else low
    return _whole(quantity, errors.InvalidQuantity, low=low, high=MAX_QUANTITY_WH, name="wh")


SUPPORTED = {
    (Market.Kind.CERTIFICATES, Market.Matching.CONTINUOUS),
    (Market.Kind.ENERGY, Market.Matching.UNIFORM),
}


def _open_market(market_id: int) -> tuple[OrderBook, Market]:
    book = book_lock(market_id)
    market = book.market
    if market.status != Market.Status.OPEN:
        raise errors.MarketNotOpen(market_id=market.pk, status=market.status)
    if (market.kind, market.matching) not in SUPPORTED:
        raise errors.MarketMatchingUnsupported(market_id=market.pk, kind=market.kind)
    return book, market


def _next_seq(book: OrderBook) -> int:
    return book_seq_take(book)


# ---------------------------------------------------------------- who acts


def _require_acts_for(actor: User, organisation, not_found: Exception) -> None:
    """Act for the organisation (operator or above, approved): else 404 if the user may
    not even see its objects, 403 if they may."""
    if user_can_act_for(actor, organisation):
        return
    if user_is_auditor(actor):
        raise AuditorReadOnly()
    if organisation.pk in user_organisation_ids(actor):
        if not organisation.is_approved:
            raise OrganisationNotApproved(organisation_id=organisation.pk)
        raise NotOrganisationMember(organisation_id=organisation.pk)
    if user_reads_everything(actor):
        raise NotOrganisationMember(organisation_id=organisation.pk)
    raise not_found


def _trading_account(actor: User, account_id: Any) -> Account:
    """An open trading account of an organisation the actor acts for (a bid's receiving
    account; either side's account in an energy market)."""
    found = (
        storage.account_with_role(account_id, actor.pk)
        if isinstance(account_id, int) and not isinstance(account_id, bool)
        else None
    )
    if found is None:
        raise AccountNotFound(account_id=account_id)
    account, role = found
    approved = account.organisation.status == Organisation.Status.APPROVED
    if not (role in _ACTING_ROLES and approved):  # accounts.permissions.user_can_act_for
        _require_acts_for(actor, account.organisation, AccountNotFound(account_id=account_id))
    if not account.is_open or account.kind != Account.Kind.TRADING:
        raise errors.AccountNotUsable(account_id=account.pk)
    return account


# ---------------------------------------------------------------- matching and settling


@dataclass
class _Run:
    """One transaction's work: the market, its time, what changed, for the event."""

    market: Market
    actor: User
    now: dt.datetime
    log: UnitsLog = field(default_factory=UnitsLog)
    accounts: dict[int, SettlementAccount] = field(default_factory=dict)
    fee_account_id: int | None = None
    trades: list[Trade] = field(default_factory=list)
    makers: dict[int, Order] = field(default_factory=dict)
    journal: Journal = field(init=False)

    def __post_init__(self) -> None:
        self.journal = Journal(currency=self.market.currency, actor=self.actor, now=self.now)

    def post(self, kind: str, lines: list, **refs: Any) -> None:
        self.journal.post(kind, lines, **refs)


def _match(run: _Run, incoming: matching.Order) -> tuple[matching.Outcome, dict[int, Order]]:
    makers = engine_io.makers_for(run.market, incoming, now=run.now)
    outcome = matching.match(
        incoming, [engine_io.engine_order(row) for row in makers.values()], now=run.now
    )
    used = {fill.maker_id for fill in outcome.fills}
    return outcome, {pk: engine_io.as_order(row) for pk, row in makers.items() if pk in used}


def _lock_money(run: _Run, organisation_id: int, makers: dict[int, Order]) -> int:
    """Every settlement account of the operation, at once, in pk order (one statement that
    also finds the placer's and the fee account); returns the placer's account id."""
    currency = run.market.currency
    ids = {row.settlement_account_id for row in makers.values()}
    orgs = {organisation_id}
    if makers and run.market.fee_bps:
        orgs.add(run.market.operator_id)
    run.accounts, own = member_accounts_lock(ids, orgs, currency)
    if orgs - set(own):
        # First trade in this currency: create the missing accounts, lock them all again.
        for org in orgs - set(own):
            settlement_account_ensure(organisation_id=org, currency=currency)
        run.accounts, own = member_accounts_lock(ids, orgs, currency)
    if run.market.operator_id in own and makers and run.market.fee_bps:
        run.fee_account_id = own[run.market.operator_id]
    return own[organisation_id]


def _escrow_to(run: _Run, order: Order, needed: int) -> None:
    """Reserve or release a bid's funds so that exactly `needed` is held for it."""
    delta = needed - order.reserved_minor
    if delta == 0:
        return
    account = run.accounts[order.settlement_account_id]
    kind = JournalEntry.Kind.RESERVE if delta > 0 else JournalEntry.Kind.RELEASE
    run.post(kind, [(account, AVAILABLE, -delta), (account, RESERVED, delta)], order_id=order.pk)
    order.reserved_minor = needed


def _bid_needs(order: Order) -> int:
    return matching.escrow_for(order.limit_price, order.open_wh)


def _settle(run: _Run, taker: Order, maker: Order, fill: matching.Fill) -> None:
    """Deliver the units, pay the seller (less the fee) from the bid's escrow."""
    buy, sell = (taker, maker) if taker.side == Order.Side.BUY else (maker, taker)
    quantity = fill.quantity
    amount = matching.amount_for(fill.price, quantity)
    fee = amount * run.market.fee_bps // 10_000
    held = sell.quantity_wh - sell.filled_wh
    delivered, rest_id = units_deliver(
        run.log,
        bundle_id=sell.bundle_id,
        held_wh=held,
        volume_wh=quantity,
        to_account_id=buy.certificate_account_id,
        # Only a partial fill reserves the rest again in the seller's name (a query).
        seller=sell.placed_by if quantity < held else None,
        now=run.now,
    )
    trade = Trade(
        market=run.market,
        buy_order=buy,
        sell_order=sell,
        aggressor=taker.side,
        price=fill.price,
        quantity_wh=quantity,
        amount_minor=amount,
        fee_minor=fee,
        bundle=delivered,
        created_at=run.now,
    )
    rows.insert([trade])
    run.trades.append(trade)
    lines = [
        (run.accounts[buy.settlement_account_id], RESERVED, -amount),
        (run.accounts[sell.settlement_account_id], AVAILABLE, amount - fee),
    ]
    if fee:
        lines.append((run.accounts[run.fee_account_id], AVAILABLE, fee))
    run.post(JournalEntry.Kind.TRADE, lines, trade_id=trade.pk)
    buy.reserved_minor -= amount
    for order in (buy, sell):
        order.filled_wh += quantity
        if order.filled_wh == order.quantity_wh:
            order.status = Order.Status.FILLED
            order.closed_at = run.now
    if rest_id is not None:
        sell.bundle_id = rest_id
    if maker.side == Order.Side.BUY:
        _escrow_to(run, maker, _bid_needs(maker))
    run.makers[maker.pk] = maker


def _finish_taker(run: _Run, taker: Order, outcome: matching.Outcome) -> None:
    """Cancel what neither traded nor rests, and release its escrow."""
    if outcome.cancelled and taker.status == OPEN:
        if taker.side == Order.Side.SELL and taker.bundle_id is not None:
            units_release(run.log, bundle_id=taker.bundle_id)
        taker.status = Order.Status.CANCELLED
        taker.cancel_reason = outcome.reason or ""
        taker.closed_at = run.now
    if taker.side == Order.Side.BUY:
        _escrow_to(run, taker, _bid_needs(taker))


def _execute(run: _Run, taker: Order, outcome: matching.Outcome, makers: dict[int, Order]):
    for fill in outcome.fills:
        _settle(run, taker, makers[fill.maker_id], fill)
    _finish_taker(run, taker, outcome)
    taker.updated_at = run.now
    for maker in run.makers.values():
        maker.updated_at = run.now
    storage.orders_set_matched([taker, *run.makers.values()])


def _event(run: _Run, kind: str, order: Order, **extra: Any) -> None:
    run.journal.write()
    makers = list(run.makers.values())
    accounts = {order.certificate_account_id} | {m.certificate_account_id for m in makers}
    ledger_append(
        kind=kind,
        actor=run.actor,
        subject=[
            order,
            *makers,
            *run.trades,
            *run.log.subjects(),
            *[("account", pk) for pk in sorted(accounts)],
            *[run.accounts[pk] for pk in sorted(run.accounts)],
            *run.journal.entries,
            run.market,
        ],
        data={
            "order": events.order_data(order),
            "makers": [events.maker_data(m) for m in makers],
            "trades": [events.trade_data(t) for t in run.trades],
            "journal": [events.entry_data(e) for e in run.journal.entries],
            "units": run.log.data(),
            **extra,
        },
    )


# ---------------------------------------------------------------- services


@transaction.atomic
@deferred_writes()  # inside the transaction: see registry/deferred_writes.py
def order_place(
    *,
    actor: User,
    market_id: int,
    side: str,
    limit_price: int,
    quantity_wh: int | None = None,
    account_id: int | None = None,
    bundle_id: int | None = None,
    time_in_force: str = matching.GTC,
    min_fill_wh: int = 0,
    criteria: Mapping[str, Any] | None = None,
    slot_start: dt.datetime | None = None,
    retire_on_delivery: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Placement:
    """Place a bid (funds escrowed) or an offer (units reserved) and match it at once; in
    an energy market, a bid or offer for `slot_start` that rests until the slot clears."""
    if side not in (Order.Side.BUY, Order.Side.SELL):
        raise errors.InvalidOrder(fields={"side": ["buy or sell"]})
    if time_in_force not in matching.TIME_IN_FORCE:
        raise errors.InvalidOrder(fields={"time_in_force": list(matching.TIME_IN_FORCE)})
    book, market = _open_market(market_id)
    # The time is read once the book is ours: a clearing that held the lock is over.
    now = now or timezone.now()
    if is_slot_market(market):
        return _place_slot_order(
            book,
            market,
            actor=actor,
            side=side,
            limit_price=limit_price,
            quantity_wh=quantity_wh,
            account_id=account_id,
            bundle_id=bundle_id,
            time_in_force=time_in_force,
            min_fill_wh=min_fill_wh,
            criteria=criteria,
            slot_start=slot_start,
            retire=retire_on_delivery,
            now=now,
        )
    if retire_on_delivery is not None:
        raise errors.RetireOnDeliveryNotAllowed(market_id=market.pk)
    if slot_start is not None:
        raise errors.InvalidOrder(fields={"slot_start": ["only energy markets have slots"]})
    price = _check_price(market, limit_price)
    if quantity_wh is not None or side == Order.Side.BUY:
        quantity_wh = _check_quantity(market, quantity_wh)
    min_fill = _whole(
        min_fill_wh or 0, errors.InvalidQuantity, low=0, high=MAX_QUANTITY_WH, name="min_fill_wh"
    )
    run = _Run(market=market, actor=actor, now=now)
    order = Order(
        market=market,
        side=side,
        status=OPEN,
        time_in_force=time_in_force,
        limit_price=price,
        min_fill_wh=min_fill,
        placed_by=actor,
        created_at=now,
        updated_at=now,
    )
    if side == Order.Side.BUY:
        if bundle_id is not None:
            raise errors.InvalidOrder(fields={"bundle": ["only offers name a bundle"]})
        if account_id is None:
            raise errors.InvalidOrder(fields={"account": ["a bid names the account to receive"]})
        account = _trading_account(actor, account_id)
        order.quantity_wh = quantity_wh
        engine_io.set_criteria(order, criteria or {})
    else:
        if criteria:
            raise errors.InvalidOrder(fields={"criteria": ["only bids have criteria"]})
        if isinstance(bundle_id, bool) or not isinstance(bundle_id, int):
            raise errors.InvalidOrder(fields={"bundle": ["an offer sells units of a bundle"]})
        reserved = units_reserve(
            run.log, actor=actor, bundle_id=bundle_id, volume_wh=quantity_wh, now=now
        )
        account = Account.objects.select_related("organisation").get(pk=reserved.account_id)
        order.bundle_id = reserved.pk
        order.quantity_wh = reserved.unit_end - reserved.unit_start
        if order.quantity_wh < market.min_quantity_wh:
            raise errors.InvalidQuantity(wh=order.quantity_wh)
        engine_io.set_attributes(
            order, Bundle.objects.select_related("issuance").get(pk=reserved.pk)
        )
    if min_fill > order.quantity_wh:
        raise errors.InvalidOrder(fields={"min_fill_wh": ["more than the quantity"]})
    order.organisation = account.organisation
    order.certificate_account = account
    order.seq = _next_seq(book)
    outcome, makers = _match(run, engine_io.engine_order(order, order_id=0))
    order.settlement_account_id = _lock_money(run, account.organisation_id, makers)
    rows.insert([order])
    if side == Order.Side.BUY:
        _escrow_to(run, order, matching.escrow_for(price, order.quantity_wh))
    _execute(run, order, _retarget(outcome, order.pk), makers)
    _event(run, events.ORDER_PLACED, order)
    return Placement(order=order, trades=run.trades)


def _place_slot_order(
    book: OrderBook,
    market: Market,
    *,
    actor: User,
    side: str,
    limit_price: Any,
    quantity_wh: Any,
    account_id: Any,
    bundle_id: Any,
    time_in_force: str,
    min_fill_wh: Any,
    criteria: Mapping[str, Any] | None,
    slot_start: Any,
    retire: Mapping[str, Any] | None,
    now: dt.datetime,
) -> Placement:
    """An energy order: checked, escrowed (bids) and resting until its slot clears."""
    wrong = {}
    if slot_start is None:
        wrong["slot_start"] = ["an energy order names its delivery slot"]
    if bundle_id is not None:
        wrong["bundle"] = ["energy offers sell metered energy, not a bundle"]
    if criteria:
        wrong["criteria"] = ["energy bids have no certificate criteria"]
    if time_in_force != matching.GTC:
        wrong["time_in_force"] = ["energy orders rest until gate closure (gtc)"]
    if min_fill_wh:
        wrong["min_fill_wh"] = ["a slot clears divisibly; no minimum fill"]
    if account_id is None:
        wrong["account"] = ["the trading account of the buyer or the seller"]
    if wrong:
        raise errors.InvalidOrder(fields=wrong)
    price = _check_price(market, limit_price)
    quantity = _check_quantity(market, quantity_wh)
    slot_start = slot_check_aligned(market, slot_start)
    check_gate_open(market, slot_start, now)
    account = _trading_account(actor, account_id)
    run = _Run(market=market, actor=actor, now=now)
    order = Order(
        market=market,
        organisation=account.organisation,
        side=side,
        product=Order.Product.ENERGY,
        slot_start=slot_start,
        status=OPEN,
        time_in_force=matching.GTC,
        limit_price=price,
        quantity_wh=quantity,
        certificate_account=account,
        placed_by=actor,
        created_at=now,
        updated_at=now,
    )
    retire_claim_set(order, retire, slot_market=True)
    order.settlement_account_id = _lock_money(run, account.organisation_id, {})
    order.seq = _next_seq(book)
    order.save()
    if side == Order.Side.BUY:
        _escrow_to(run, order, matching.escrow_for(price, quantity))
        order.save(update_fields=["reserved_minor"])
    _event(run, events.ORDER_PLACED, order)
    return Placement(order=order)


def _retarget(outcome: matching.Outcome, order_id: int) -> matching.Outcome:
    fills = tuple(matching.Fill(f.maker_id, order_id, f.price, f.quantity) for f in outcome.fills)
    return matching.Outcome(fills, outcome.resting, outcome.cancelled, outcome.reason)


def _locked_own_order(actor: User, order_id: Any) -> tuple[OrderBook, Order]:
    """The book (locked first) and the order, which the actor must act for."""
    found = (
        Order.objects.filter(pk=order_id).values_list("market_id", flat=True).first()
        if isinstance(order_id, int) and not isinstance(order_id, bool)
        else None
    )
    if found is None:
        raise errors.OrderNotFound(order_id=order_id)
    book = book_lock(found)
    order = Order.objects.select_related("organisation").get(pk=order_id)
    _require_acts_for(actor, order.organisation, errors.OrderNotFound(order_id=order_id))
    if order.status != OPEN:
        raise errors.OrderNotOpen(order_id=order.pk, status=order.status)
    return book, order


@transaction.atomic
def order_cancel(*, actor: User, order_id: int, now: dt.datetime | None = None) -> Order:
    """Cancel an open order: its escrowed funds or reserved units are released."""
    book, order = _locked_own_order(actor, order_id)
    run = _Run(market=book.market, actor=actor, now=now or timezone.now())
    if order.slot_start is not None:
        check_gate_open(book.market, order.slot_start, run.now)
    run.accounts = settlement_accounts_lock([order.settlement_account_id])
    if order.side == Order.Side.SELL and order.bundle_id is not None:
        units_release(run.log, bundle_id=order.bundle_id)
    order.status = Order.Status.CANCELLED
    order.cancel_reason = "cancelled"
    order.closed_at = order.updated_at = run.now
    if order.side == Order.Side.BUY:
        _escrow_to(run, order, 0)
    order.save(
        update_fields=["status", "cancel_reason", "closed_at", "updated_at", "reserved_minor"]
    )
    _event(run, events.ORDER_CANCELLED, order)
    return order


@transaction.atomic
def order_amend(
    *,
    actor: User,
    order_id: int,
    limit_price: int | None = None,
    quantity_wh: int | None = None,
    now: dt.datetime | None = None,
) -> Placement:
    """Change an open order's price and/or total quantity. A new price or a larger
    quantity loses time priority and matches again at once, like a new order."""
    if limit_price is None and quantity_wh is None:
        raise errors.InvalidOrder(fields={"limit_price": ["give a price or a quantity"]})
    book, order = _locked_own_order(actor, order_id)
    market = book.market
    if market.status != Market.Status.OPEN:
        raise errors.MarketNotOpen(market_id=market.pk, status=market.status)
    run = _Run(market=market, actor=actor, now=now or timezone.now())
    slotted = order.slot_start is not None
    if slotted:
        check_gate_open(market, order.slot_start, run.now)
    before = {"limit_price": order.limit_price, "quantity_wh": order.quantity_wh}
    price = order.limit_price if limit_price is None else _check_price(market, limit_price)
    quantity = order.quantity_wh
    if quantity_wh is not None:
        quantity = _check_quantity(
            market, quantity_wh, low=max(order.filled_wh + 1, market.min_quantity_wh)
        )
    if order.side == Order.Side.SELL and quantity > order.quantity_wh and not slotted:
        raise errors.OfferIncreaseUnsupported(order_id=order.pk, quantity_wh=order.quantity_wh)
    loses_priority = price != order.limit_price or quantity > order.quantity_wh
    if order.side == Order.Side.SELL and quantity < order.quantity_wh and not slotted:
        units_release(run.log, bundle_id=order.bundle_id)
        rest = units_reserve(
            run.log,
            actor=actor,
            bundle_id=order.bundle_id,
            volume_wh=quantity - order.filled_wh,
            now=run.now,
        )
        order.bundle_id = rest.pk
    order.limit_price, order.quantity_wh = price, quantity
    if loses_priority:
        order.seq = _next_seq(book)
    outcome, makers = (
        _match(run, engine_io.engine_order(order, min_fill=0))
        if loses_priority and not slotted
        else (matching.Outcome((), order.open_wh, 0), {})
    )
    _lock_money(run, order.organisation_id, makers)
    if order.side == Order.Side.BUY:
        _escrow_to(run, order, _bid_needs(order))
    _execute(run, order, outcome, makers)
    _event(run, events.ORDER_AMENDED, order, before=before)
    return Placement(order=order, trades=run.trades)
