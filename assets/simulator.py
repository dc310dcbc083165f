"""Synthetic meter profiles for demos and load tests (plain Python, no Django).

Solar: clear-sky output follows the sun's elevation (from latitude, longitude, day of
year and time of day), so it is zero at night and peaks higher and longer in summer; a
day-long cloudiness level and hour-to-hour cloud persistence cut it down, with a little
noise. Wind: an autocorrelated wind speed with a Weibull distribution (shape 2, scale
7.5 m/s) through a turbine power curve (cut-in 3, rated 12, cut-out 25 m/s). Both return
the energy of each interval in whole Wh and never exceed capacity x duration.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

SUB_STEPS = 4  # samples per interval for the energy integral


@dataclass(frozen=True)
class Interval:
    start: dt.datetime
    end: dt.datetime
    wh: int


def sun_elevation(latitude: float, longitude: float, moment: dt.datetime) -> float:
    """Solar elevation angle in degrees (NOAA-style approximation, about 0.5 deg accuracy)."""
    moment = moment.astimezone(dt.UTC)
    day = moment.timetuple().tm_yday
    hours = moment.hour + moment.minute / 60 + moment.second / 3600
    gamma = 2 * math.pi / 365 * (day - 1 + (hours - 12) / 24)
    declination = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    equation_of_time = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    solar_minutes = hours * 60 + equation_of_time + 4 * longitude
    hour_angle = math.radians(solar_minutes / 4 - 180)
    lat = math.radians(latitude)
    sin_elevation = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(
        declination
    ) * math.cos(hour_angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_elevation))))


def clear_sky_fraction(elevation_degrees: float) -> float:
    """Share of rated output under a clear sky at this sun elevation (0 when below horizon)."""
    if elevation_degrees <= 0:
        return 0.0
    sin_e = math.sin(math.radians(elevation_degrees))
    air_mass = 1 / (sin_e + 0.50572 * (elevation_degrees + 6.07995) ** -1.6364)
    beam = 0.7 ** (air_mass**0.678)  # Meinel's clear-sky transmittance
    return min(1.0, 1.1 * sin_e * beam / 0.7)  # a module tilted for its latitude, roughly


def _intervals(
    start: dt.datetime, days: int, minutes: int
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    step = dt.timedelta(minutes=minutes)
    moment = start
    stop = start + dt.timedelta(days=days)
    while moment < stop:
        yield moment, moment + step
        moment += step


def solar_profile(
    *,
    capacity_w: int,
    latitude: float,
    longitude: float,
    start: dt.datetime,
    days: int,
    interval_minutes: int = 60,
    seed: int = 0,
) -> Iterator[Interval]:
    """Energy per interval of a PV plant: sun elevation x clouds x noise, clipped to capacity."""
    rng = random.Random(seed)
    cloudiness = 0.0
    cloud = 0.0
    day = None
    limit = capacity_w * interval_minutes // 60
    for begin, end in _intervals(start, days, interval_minutes):
        if begin.date() != day:
            day = begin.date()
            cloudiness = rng.betavariate(1.2, 1.8)  # 0 clear .. 1 overcast, day by day
        cloud = 0.7 * cloud + 0.3 * min(1.0, max(0.0, rng.gauss(cloudiness, 0.25)))
        factor = 0.0
        for i in range(SUB_STEPS):
            moment = begin + (end - begin) * ((i + 0.5) / SUB_STEPS)
            factor += clear_sky_fraction(sun_elevation(latitude, longitude, moment))
        factor /= SUB_STEPS
        if factor > 0:
            factor *= (1 - 0.75 * cloud) * (1 + rng.gauss(0, 0.03))
        wh = round(capacity_w * max(0.0, factor) * interval_minutes / 60)
        yield Interval(begin, end, min(wh, limit))


def turbine_power_fraction(speed: float) -> float:
    """Output share of a generic turbine at a hub-height wind speed in m/s."""
    if speed < 3 or speed >= 25:
        return 0.0
    if speed >= 12:
        return 1.0
    return (speed**3 - 27) / (12**3 - 27)


def wind_profile(
    *,
    capacity_w: int,
    start: dt.datetime,
    days: int,
    interval_minutes: int = 60,
    seed: int = 0,
    scale: float = 7.5,
    shape: float = 2.0,
    persistence: float = 0.9,
) -> Iterator[Interval]:
    """Energy per interval of a wind plant: AR(1) Gaussian -> Weibull speed -> power curve."""
    rng = random.Random(seed)
    z = rng.gauss(0, 1)
    limit = capacity_w * interval_minutes // 60
    rho = persistence ** (interval_minutes / 60)
    for begin, end in _intervals(start, days, interval_minutes):
        z = rho * z + math.sqrt(1 - rho * rho) * rng.gauss(0, 1)
        uniform = min(1 - 1e-12, max(1e-12, 0.5 * (1 + math.erf(z / math.sqrt(2)))))
        speed = scale * (-math.log(1 - uniform)) ** (1 / shape)
        fraction = turbine_power_fraction(speed) * (1 - 0.05 * rng.random())  # losses
        wh = round(capacity_w * fraction * interval_minutes / 60)
        yield Interval(begin, end, min(wh, limit))


def profile_for(
    *,
    technology_code: str,
    capacity_w: int,
    latitude: float,
    longitude: float,
    start: dt.datetime,
    days: int,
    interval_minutes: int,
    seed: int = 0,
) -> Iterator[Interval]:
    """Solar for T01 (solar) devices, wind for everything else."""
    if technology_code.startswith("T01"):
        return solar_profile(
            capacity_w=capacity_w,
            latitude=latitude,
            longitude=longitude,
            start=start,
            days=days,
            interval_minutes=interval_minutes,
            seed=seed,
        )
    return wind_profile(
        capacity_w=capacity_w, start=start, days=days, interval_minutes=interval_minutes, seed=seed
    )
