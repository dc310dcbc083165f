"""What an agent trades in one slot (pure): its net position, side, quantity and price.

position = forecast production - forecast consumption, and when the organisation has
storage whose charge is known, the battery's part:
- above the reserve, the spare charge (charge - reserve) first covers this slot's forecast
  deficit; what is left is planned over the slots left in the day (this one included):
  an even share, spare // slots_left, is offered in this slot. Each run reads the charge
  again (the contracts app's intraday state of charge), so the next slot shares what is
  left: the day's sales from the battery never add up to more than the charge above the
  reserve (plus what a surplus put back), where offering the whole spare in every slot
  would offer it many times over. An even spread keeps charge for the evening, when the
  forecast deficits of the later slots are covered first in their own runs;
- below the reserve, a surplus refills the battery first (no buying to refill it).
A positive position is offered, a negative one bid for, in whole Wh; less than the
market's minimum quantity is not traded. A slot market clears at one price
(market/clearing.py), so the agent states its limits as they are: it offers at its
minimum sell price and bids at its maximum buy price, each brought inside the market's
price band (an offer never below the minimum sell price, a bid never above the maximum buy
price; when the band leaves no such price it does not trade). Selling never takes the
battery below the reserve: after the slot charge + production - consumption - sold >=
reserve whenever anything is sold.
"""

from __future__ import annotations

from dataclasses import dataclass

from market.agents.forecast import Forecast

BUY, SELL = "buy", "sell"


@dataclass(frozen=True)
class Preferences:
    min_sell_price: int
    max_buy_price: int
    reserve_wh: int


@dataclass(frozen=True)
class Band:
    """The market's rules an order must meet."""

    price_min: int
    price_max: int
    min_quantity_wh: int


@dataclass(frozen=True)
class Intent:
    """What to have in the book for the slot: side "" means no order."""

    side: str
    quantity_wh: int
    price: int | None
    reason: str
    explanation: str
    position_wh: int | None


def _position(net: int, charge_wh: int | None, reserve_wh: int, slots_left: int) -> int:
    """The Wh to trade: surplus refills a battery below its reserve first; a battery above
    it covers this slot's deficit, and this slot's even share of the rest (over the
    `slots_left` slots left in the day) is offered; a battery below it is not refilled by
    buying."""
    if charge_wh is None:
        return net
    spare = charge_wh - reserve_wh
    if spare >= 0:
        cover = min(spare, max(0, -net))
        return net + cover + (spare - cover) // slots_left
    return max(0, net + spare) if net > 0 else net


def decide(
    forecast: Forecast,
    *,
    preferences: Preferences,
    band: Band,
    battery_charge_wh: int | None,
    slots_left: int = 1,
) -> Intent:
    """The order the agent wants for the slot, with a reason code and an explanation;
    `slots_left` is how many slots are left in the day, this one included (at least 1)."""
    slots_left = max(1, slots_left)
    produced, consumed = forecast.production_wh, forecast.consumption_wh
    if produced is None and consumed is None:
        return Intent(
            "", 0, None, "no_history", "No readings history for this slot: no order.", None
        )
    produced, consumed = produced or 0, consumed or 0
    net = produced - consumed
    position = _position(net, battery_charge_wh, preferences.reserve_wh, slots_left)
    seen = (
        f"Forecast for this slot: {produced} Wh produced, {consumed} Wh consumed "
        f"(average of the same slot on {max(forecast.production_days, forecast.consumption_days)}"
        f" earlier days)"
    )
    if battery_charge_wh is not None:
        seen += (
            f"; the battery holds {battery_charge_wh} Wh against a reserve of "
            f"{preferences.reserve_wh} Wh"
        )
        spare = battery_charge_wh - preferences.reserve_wh
        cover = min(max(spare, 0), max(0, -net))
        if spare > cover:
            covered = f"{cover} Wh of it cover this slot's deficit, " if cover else ""
            left = "left " if cover else ""
            slots = f"{slots_left} slot{'s' if slots_left != 1 else ''}"
            seen += (
                f" ({covered}the {spare - cover} Wh {left}above the reserve are spread over "
                f"the {slots} left in the day: {(spare - cover) // slots_left} Wh offered "
                f"in this one)"
            )
    seen += f": net position {position:+d} Wh."
    if position == 0:
        return Intent("", 0, None, "balanced", f"{seen} Nothing to trade.", 0)
    side = SELL if position > 0 else BUY
    quantity = abs(position)
    if quantity < band.min_quantity_wh:
        return Intent(
            "",
            0,
            None,
            "below_min_quantity",
            f"{seen} {quantity} Wh is below the market's minimum of {band.min_quantity_wh} Wh.",
            position,
        )
    if side == SELL:
        price = max(preferences.min_sell_price, band.price_min)
        if price > band.price_max:
            return Intent(
                "",
                0,
                None,
                "min_sell_above_band",
                f"{seen} The minimum sell price {preferences.min_sell_price} is above the "
                f"market's highest price {band.price_max}: no offer.",
                position,
            )
        why = f"Offer {quantity} Wh at {price} per MWh (not below the minimum sell price)."
        return Intent(SELL, quantity, price, "surplus", f"{seen} {why}", position)
    price = min(preferences.max_buy_price, band.price_max)
    if price < band.price_min:
        return Intent(
            "",
            0,
            None,
            "max_buy_below_band",
            f"{seen} The maximum buy price {preferences.max_buy_price} is below the "
            f"market's lowest price {band.price_min}: no bid.",
            position,
        )
    why = f"Bid for {quantity} Wh at up to {price} per MWh (the maximum buy price)."
    return Intent(BUY, quantity, price, "deficit", f"{seen} {why}", position)
