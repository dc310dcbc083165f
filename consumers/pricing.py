"""Market prices for community bills, through a hook the market fills.

consumers and market are both layer-6 apps and may not import each other, so consumers
owns `PRICE_LOOKUPS` and the market registers its lookup by name in its `ready()`
(`HOOKS["consumers.price_lookups"]`; consumers comes first in INSTALLED_APPS). Without the
market installed the hook is empty and every interval falls back to the internal price.
"""

from __future__ import annotations

import numpy as np

from registry.hooks import Hook

# Called with the keyword `requests`: a list of dicts with `grid_area_id`, `currency`,
# `start`, `step_seconds` and `n`. Answers a list as long, each item the cleared energy price
# (integer minor units per MWh) of each of the request's n intervals
# [start + i * step, start + (i + 1) * step), None for an interval no energy market of that
# grid area and currency cleared a price for, or None instead of the list when it knows no
# such market; or None altogether. The first registration that answers a request wins. One
# call for all of a report's communities, so the lookup costs the same queries for one or many.
PRICE_LOOKUPS = Hook("consumers.price_lookups")


def cleared_prices_many(requests: list[dict]) -> list[list[int | None]]:
    """The cleared price per interval of each request, all None where no lookup answers."""
    answers: list[list[int | None] | None] = [None] * len(requests)
    for lookup in PRICE_LOOKUPS:
        pending = [i for i, answer in enumerate(answers) if answer is None]
        if not pending:
            break
        got = lookup(requests=[requests[i] for i in pending])
        if got is None:
            continue
        for i, prices in zip(pending, got, strict=True):
            if prices is not None:
                if len(prices) != requests[i]["n"]:
                    raise ValueError(
                        f"{lookup!r} answered {len(prices)} prices for {requests[i]['n']} intervals"
                    )
                answers[i] = list(prices)
    return [
        answer if answer is not None else [None] * request["n"]
        for answer, request in zip(answers, requests, strict=True)
    ]


def prices_with_fallback(
    prices: list[int | None], internal_minor_per_kwh: int
) -> tuple[np.ndarray, np.ndarray]:
    """(price per MWh for every interval, whether it is the cleared price): intervals
    without a clearing take the internal price (per kWh x 1000)."""
    cleared = np.array([p is not None for p in prices], dtype=bool)
    fallback = int(internal_minor_per_kwh) * 1000
    per_mwh = np.array([fallback if p is None else int(p) for p in prices], dtype=np.int64)
    return per_mwh, cleared
