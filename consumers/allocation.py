"""Energy-community allocation and hourly matching as pure, vectorised arithmetic (numpy).

No Django here. Energy is integer Wh; every split is a largest-remainder split, so no Wh
is lost or created: for every interval, allocated + exported == production exactly.

Arrays are (intervals, members). A member outside its membership period in an interval
(`active` False) gets nothing and its consumption is ignored there (mid-period joins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATIC = "static"
DYNAMIC = "dynamic"


def split_largest_remainder(volume: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Split each row's `volume` (T,) by non-negative integer `weights` (T, M), exactly.

    Each member gets the floor of volume * w / sum(w); the Wh left over go one each to the
    largest remainders, ties served in a rotating order (member index shifted by the row)
    so equal members even out over time. Rows whose weights are all zero must have
    volume zero.
    """
    volume = np.asarray(volume, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    n_rows, n_members = weights.shape
    if n_members == 0:
        if np.any(volume):
            raise ValueError("a positive volume needs at least one member")
        return np.zeros((n_rows, 0), dtype=np.int64)
    if np.any(weights < 0) or np.any(volume < 0):
        raise ValueError("volumes and weights must not be negative")
    total = weights.sum(axis=1)
    if np.any((total == 0) & (volume > 0)):
        raise ValueError("a positive volume needs a positive weight")
    safe_total = np.where(total == 0, 1, total)
    exact = volume[:, None] * weights
    base = exact // safe_total[:, None]
    remainder = exact - base * safe_total[:, None]
    left = volume - base.sum(axis=1)
    if n_members == 1 or not np.any(left):
        return base
    rows = np.flatnonzero(left)
    # One integer per member that orders by remainder, then by the rotating tie order
    # (first in turn wins): unique within a row, so the `left` largest are exactly those at
    # or above the row's left-th largest value. One sort, no scatter.
    turn = (np.arange(n_members)[None, :] - rows[:, None]) % n_members
    rank = remainder[rows] * n_members + (n_members - 1 - turn)
    threshold = np.take_along_axis(np.sort(rank, axis=1), (n_members - left[rows])[:, None], axis=1)
    base[rows] += rank >= threshold
    return base


@dataclass
class Allocation:
    """Per interval and member: allocated (= self-consumed from the community), imported
    from the grid, exported share; per interval the community's export."""

    allocated: np.ndarray  # (T, M) Wh
    imported: np.ndarray  # (T, M) Wh: consumption not covered by the allocation
    exported: np.ndarray  # (T, M) Wh: the member's part of what the community exported
    community_exported: np.ndarray  # (T,) Wh, equals exported.sum(axis=1) when anyone is active


def allocate(
    *,
    production: np.ndarray,
    consumption: np.ndarray,
    active: np.ndarray,
    key: str,
    static_weights: np.ndarray | None = None,
) -> Allocation:
    """Split each interval's shared production among the active members.

    static: production split by the shares of the members active in the interval (integer
    weights, e.g. numerators over a common denominator), each part capped at the member's
    consumption; what a member cannot use is its export.
    dynamic: min(production, total consumption) split by each member's consumption; the
    surplus is exported, attributed to the active members in equal parts.
    """
    production = np.asarray(production, dtype=np.int64)
    consumption = np.where(active, np.asarray(consumption, dtype=np.int64), 0)
    active = np.asarray(active, dtype=bool)
    if np.any(production < 0) or np.any(consumption < 0):
        raise ValueError("production and consumption must not be negative")
    anyone = active.any(axis=1)
    shared = np.where(anyone, production, 0)
    if key == STATIC:
        if static_weights is None:
            raise ValueError("a static key needs weights")
        weights = np.where(active, np.asarray(static_weights, dtype=np.int64)[None, :], 0)
        parts = split_largest_remainder(shared, weights)
        allocated = np.minimum(parts, consumption)
        exported = parts - allocated
    elif key == DYNAMIC:
        total = consumption.sum(axis=1)
        used = np.minimum(shared, total)
        allocated = split_largest_remainder(used, consumption)
        exported = split_largest_remainder(shared - used, active.astype(np.int64))
    else:
        raise ValueError(f"unknown key {key!r}")
    return Allocation(
        allocated=allocated,
        imported=consumption - allocated,
        exported=exported,
        community_exported=production - allocated.sum(axis=1),
    )


def money_minor(wh: np.ndarray, price_minor_per_kwh: int) -> np.ndarray:
    """Money per interval in integer minor units that adds up to the rounded total.

    Each interval gets the growth of floor(cumulative Wh * price / 1000) along axis 0, so
    no fraction of a cent is lost or invented over the period.
    """
    wh = np.asarray(wh, dtype=np.int64)
    cumulative = np.cumsum(wh, axis=0) * int(price_minor_per_kwh) // 1000
    first = cumulative[:1]
    return np.concatenate([first, np.diff(cumulative, axis=0)], axis=0)


@dataclass
class Matching:
    """Hourly (24/7) matching of consumption against certificates of the same hour."""

    consumption: np.ndarray  # (H,) Wh
    certificates: np.ndarray  # (H,) Wh held or retired for the hour
    matched: np.ndarray  # (H,) Wh = min(consumption, certificates)

    def cfe(self, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(matched, consumption) summed per group label (all hours when None)."""
        if groups is None:
            return np.array([self.matched.sum()]), np.array([self.consumption.sum()])
        labels, index = np.unique(groups, return_inverse=True)
        matched = np.bincount(index, weights=self.matched, minlength=len(labels))
        consumed = np.bincount(index, weights=self.consumption, minlength=len(labels))
        return matched.astype(np.int64), consumed.astype(np.int64)


def match_hourly(consumption: np.ndarray, certificates: np.ndarray) -> Matching:
    """EnergyTag: an hour's certificates match only that hour's consumption; surplus is lost."""
    consumption = np.asarray(consumption, dtype=np.int64)
    certificates = np.asarray(certificates, dtype=np.int64)
    return Matching(
        consumption=consumption,
        certificates=certificates,
        matched=np.minimum(consumption, certificates),
    )


def money_at_prices(wh: np.ndarray, price_minor_per_mwh: np.ndarray) -> np.ndarray:
    """Each member's money over the period (floored to the minor unit) for `wh` (T, M) at a
    price per interval (T,) in minor units per MWh: floor(sum(wh * price) / 1,000,000).

    One floor per member over the period, so no fraction of a cent is lost or invented by
    rounding interval by interval.
    """
    wh = np.asarray(wh, dtype=np.int64)
    price = np.asarray(price_minor_per_mwh, dtype=np.int64)
    if wh.size == 0:
        return np.zeros(wh.shape[1:], dtype=np.int64)
    return (wh * price[:, None]).sum(axis=0) // 1_000_000
