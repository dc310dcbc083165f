"""Market prices for community bills, through a hook the market fills.

consumers and market are both layer-6 apps and may not import each other, so consumers
owns `PRICE_LOOKUPS` and the market registers its lookup by name in its `ready()`
(`HOOKS["consumers.price_lookups"]`; consumers comes first in INSTALLED_APPS). Without the
market installed the hook is empty and every interval falls back to the internal price.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from registry.hooks import Hook

# Called with keywords `grid_area_id`, `currency`, `start`, `step_seconds`, `n`: the cleared
# energy price (integer minor units per MWh) of each of the n intervals
# [start + i * step, start + (i + 1) * step), None where no energy market of that grid area
# and currency cleared a price for it. The first registration that answers wins.
PRICE_LOOKUPS = Hook("consumers.price_lookups")


def cleared_prices(
    *, grid_area_id: int, currency: str, start: dt.datetime, step_seconds: int, n: int
) -> list[int | None]:
    """The cleared price per interval from the first lookup registered, or all None."""
    for lookup in PRICE_LOOKUPS:
        prices = lookup(
            grid_area_id=grid_area_id,
            currency=currency,
            start=start,
            step_seconds=step_seconds,
            n=n,
        )
        if prices is not None:
            if len(prices) != n:
                raise ValueError(f"{lookup!r} answered {len(prices)} prices for {n} intervals")
            return list(prices)
    return [None] * n


def prices_with_fallback(
    prices: list[int | None], internal_minor_per_kwh: int
) -> tuple[np.ndarray, np.ndarray]:
    """(price per MWh for every interval, whether it is the cleared price): intervals
    without a clearing take the internal price (per kWh x 1000)."""
    cleared = np.array([p is not None for p in prices], dtype=bool)
    fallback = int(internal_minor_per_kwh) * 1000
    per_mwh = np.array([fallback if p is None else int(p) for p in prices], dtype=np.int64)
    return per_mwh, cleared
