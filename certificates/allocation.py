"""Pure arithmetic of issuance: split a volume by shares, number periods. No Django here."""

import datetime as dt
from collections.abc import Sequence
from fractions import Fraction
from math import floor

HOUR = dt.timedelta(hours=1)


def split_by_shares(volume_wh: int, shares: Sequence[Fraction], *, first_tie: int = 0) -> list[int]:
    """Largest-remainder split of `volume_wh` by `shares` (which add up to 1); sums exactly.

    Each owner gets the floor of its exact share; the Wh left over go one each to the
    largest fractional remainders. Equal remainders are served in turn starting at
    position `first_tie` (the caller rotates it per period), so that equal co-owners
    even out over time instead of the first one always winning.
    """
    if volume_wh < 0:
        raise ValueError("volume must not be negative")
    if not shares or sum(shares, Fraction(0)) != 1 or any(s < 0 for s in shares):
        raise ValueError("shares must be non-negative and add up to 1")
    n = len(shares)
    if n == 1:
        return [volume_wh]
    exact = [volume_wh * share for share in shares]
    parts = [floor(x) for x in exact]
    left = volume_wh - sum(parts)
    order = sorted(range(n), key=lambda i: (-(exact[i] - parts[i]), (i - first_tie) % n))
    for i in order[:left]:
        parts[i] += 1
    return parts


def split_by_weights(volume_wh: int, weights: Sequence[int], *, first_tie: int = 0) -> list[int]:
    """`split_by_shares` for integer weights (shares weight / sum): the same parts, in
    integer arithmetic (contract shares in basis points split every issued hour)."""
    total = sum(weights)
    if volume_wh < 0 or total <= 0 or any(w < 0 for w in weights):
        raise ValueError("volume must not be negative, weights non-negative with a positive sum")
    n = len(weights)
    if n == 1:
        return [volume_wh]
    parts = []
    remainders = []
    for weight in weights:
        whole, rest = divmod(volume_wh * weight, total)
        parts.append(whole)
        remainders.append(rest)
    left = volume_wh - sum(parts)
    order = sorted(range(n), key=lambda i: (-remainders[i], (i - first_tie) % n))
    for i in order[:left]:
        parts[i] += 1
    return parts


def hour_number(moment: dt.datetime) -> int:
    """Hours since the Unix epoch (UTC) of an aligned hour: a stable period index."""
    return int(moment.timestamp()) // 3600


def floor_hour(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def is_hour_aligned(moment: dt.datetime) -> bool:
    return floor_hour(moment) == moment


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def expiry_date(period_end: dt.datetime, months: int | None) -> dt.date | None:
    """First day (UTC) on which a certificate of a period ending at `period_end` is expired.

    `months` after the end of production, counted from the day the period ends (a
    period ending later than midnight counts from the next day): EECS' "12 months".
    """
    if not months:
        return None
    end = period_end.astimezone(dt.UTC)
    day = end.date()
    if end.time() != dt.time(0):
        day += dt.timedelta(days=1)
    return add_months(day, months)
