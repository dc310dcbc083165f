"""What an agent trades in one slot (pure): its net position, side, quantity and price.

position = forecast production - forecast consumption, and when the organisation has
storage whose charge is known: plus the charge above the reserve (which covers a deficit,
its excess offered), or, below the reserve, a surplus refills the battery first (no buying
to refill it). A positive position is
offered, a negative one bid for, in whole Wh; less than the market's minimum quantity is
not traded. A slot market clears at one price (market/clearing.py), so the agent states
its limits as they are: it offers at its minimum sell price and bids at its maximum buy
price, each brought inside the market's price band (an offer never below the minimum
sell price, a bid never above the maximum buy price; when the band leaves no such price
it does not trade). Selling never takes the battery below the reserve: after the slot
charge + production - consumption - sold >= reserve whenever anything is sold.
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


def _position(net: int, charge_wh: int | None, reserve_wh: int) -> int:
    """The Wh to trade: surplus refills a battery below its reserve first; a battery above
    it covers a deficit and its excess is offered; a battery below it is not refilled by
    buying."""
    if charge_wh is None:
        return net
    spare = charge_wh - reserve_wh
    if spare >= 0:
        return net + spare
    return max(0, net + spare) if net > 0 else net


def decide(
    forecast: Forecast, *, preferences: Preferences, band: Band, battery_charge_wh: int | None
) -> Intent:
    """The order the agent wants for the slot, with a reason code and an explanation."""
    produced, consumed = forecast.production_wh, forecast.consumption_wh
    if produced is None and consumed is None:
        return Intent(
            "", 0, None, "no_history", "No readings history for this slot: no order.", None
        )
    produced, consumed = produced or 0, consumed or 0
    position = _position(produced - consumed, battery_charge_wh, preferences.reserve_wh)
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
