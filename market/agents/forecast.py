"""A slot's expected production and consumption from the readings history (pure).

The seasonal profile: the forecast for a slot is the average, over the last N days, of
what the organisation metered in the same slot of the day (the slot's start minus 1, 2,
… N days). A day whose readings do not cover the slot (None, as
`market.metering.metered_wh` answers) is left out of the average; with no covered day
there is no forecast (None). The average is rounded down to whole Wh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Forecast:
    """Expected Wh in one slot (None: no history), and how many days it averaged."""

    production_wh: int | None
    consumption_wh: int | None
    production_days: int
    consumption_days: int


def history_starts(slot_start: dt.datetime, days: int) -> list[dt.datetime]:
    """The same slot of the day on each of the `days` days before the slot."""
    return [slot_start - dt.timedelta(days=n) for n in range(1, days + 1)]


def seasonal_average(history: Sequence[int | None]) -> tuple[int | None, int]:
    """The average of the known days (rounded down) and how many were known."""
    known = [wh for wh in history if wh is not None]
    if not known:
        return None, 0
    return sum(known) // len(known), len(known)


def slot_forecast(
    *, production: Sequence[int | None], consumption: Sequence[int | None]
) -> Forecast:
    """The slot's forecast from the same slot's metered Wh on earlier days."""
    produced, produced_days = seasonal_average(production)
    consumed, consumed_days = seasonal_average(consumption)
    return Forecast(produced, consumed, produced_days, consumed_days)
