"""Deterministic meter data of the simulated community (plain Python, no Django).

PV: a bell over daylight (06:00-18:00 UTC, highest at noon) times the day's cloudiness
and a little noise. Household load: a base load with a morning peak (around 07:30) and an
evening peak (around 19:00), with noise. Whole Wh per interval, never negative.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import zlib


def _rng(seed: int, name: str, day: dt.date) -> random.Random:
    return random.Random(zlib.crc32(f"{seed}:{name}:{day.isoformat()}".encode()))


def _hours(start: dt.datetime, minutes: int) -> float:
    middle = start + dt.timedelta(minutes=minutes / 2)
    return middle.hour + middle.minute / 60


def pv_wh(*, seed: int, name: str, capacity_w: int, start: dt.datetime, minutes: int) -> int:
    """A rooftop PV plant's production in [start, start + minutes)."""
    day = _rng(seed, name, start.date())
    clouds = day.uniform(0.0, 0.5)  # the day's cloudiness
    hours = _hours(start, minutes)
    if not 6 <= hours <= 18:
        return 0
    bell = math.sin(math.pi * (hours - 6) / 12) ** 1.5
    noise = _rng(seed, f"{name}@{start.isoformat()}", start.date()).gauss(1.0, 0.05)
    return max(0, round(capacity_w * bell * (1 - clouds) * noise * minutes / 60))


def load_wh(
    *, seed: int, name: str, base_w: int, peak_w: int, start: dt.datetime, minutes: int
) -> int:
    """A household's consumption in [start, start + minutes)."""
    hours = _hours(start, minutes)
    peaks = math.exp(-(((hours - 7.5) / 1.2) ** 2)) + math.exp(-(((hours - 19) / 1.8) ** 2))
    noise = _rng(seed, f"{name}@{start.isoformat()}", start.date()).gauss(1.0, 0.1)
    return max(0, round((base_w + peak_w * peaks) * noise * minutes / 60))


def battery_day(
    *, pv: list[int], load: list[int], capacity_wh: int, power_w: int, minutes: int
) -> list[tuple[int, int]]:
    """A home battery's (charge Wh, discharge Wh) per interval of one UTC day, from the
    day's PV and load of its site: it charges from the surplus and discharges into the
    deficit, at most `power_w`, lossless, between empty and `capacity_wh`.

    It starts the day empty and ends it empty (what is left in the last interval goes to
    the grid), so each day's readings depend on that day alone (a rerun sends the same).
    Within a UTC hour it never charges after it discharged beyond what it held at the
    hour's start: the storage balancing contract nets an hour charge-first, and its
    capacity check (charge on top of the hour's starting charge) must pass too.
    """
    step = power_w * minutes // 60
    per_hour = max(1, 60 // minutes)
    soc = hour_start = hour_charged = 0
    rows: list[tuple[int, int]] = []
    for index, (produced, consumed) in enumerate(zip(pv, load, strict=True)):
        if index % per_hour == 0:
            hour_start, hour_charged = soc, 0
        net = produced - consumed
        charge = discharge = 0
        if net > 0:
            charge = max(0, min(net, step, capacity_wh - hour_start - hour_charged))
            hour_charged += charge
            soc += charge
        elif net < 0:
            discharge = min(-net, step, soc)
            soc -= discharge
        rows.append((charge, discharge))
    if rows and soc:
        charge, discharge = rows[-1]
        rows[-1] = (charge, discharge + soc)
    return rows
