"""contracts.kinds.shares.allocate: a group's periods split once (`splits`) give each
contract what splitting them per contract gives, and an over-subscribed period is refused
only to the contracts it concerns."""

import datetime as dt

import pytest

from contracts.errors import InvalidTerms
from contracts.kinds import shares
from contracts.models import Contract

HOUR = dt.timedelta(hours=1)
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def contract(pk: int, share_bp: int, start=T0, end=T0 + 48 * HOUR) -> Contract:
    return Contract(pk=pk, share_bp=share_bp, start_at=start, end_at=end)


def base(hours: int) -> list[tuple]:
    return [(T0 + h * HOUR, T0 + (h + 1) * HOUR, 997 + 13 * h) for h in range(hours)]


def test_splitting_each_period_once_gives_every_contract_the_same():
    # given a group whose members cover different hours, one without a share
    group = [
        contract(1, 2_500),
        contract(2, 3_333, start=T0 + 2 * HOUR),
        contract(3, 1_111, end=T0 + 4 * HOUR),
        contract(4, None),
    ]
    periods = base(6)

    # when each is allocated alone, and all of them through one `splits`
    alone = [shares.allocate(c, periods, group) for c in group]
    splits: dict = {}
    together = [shares.allocate(c, periods, group, splits) for c in group]

    # then the same, each period split once, nothing taken twice
    assert together == alone
    assert len(splits) == len(periods)
    assert [len(a) for a in alone] == [6, 4, 4, 0]
    for hour, (start, _end, wh) in enumerate(periods):
        taken = sum(part for a in alone for s, _e, part in a if s == start)
        assert 0 < taken < wh, hour


def test_an_over_subscribed_period_is_refused_to_the_contracts_covering_it():
    # given two contracts over 100% in the first hour only (the second starts then ends)
    group = [contract(1, 6_000), contract(2, 6_000, end=T0 + HOUR)]
    later = contract(3, 1_000, start=T0 + HOUR)
    splits: dict = {}

    # then the covering contracts are refused, the one after that hour is not
    with pytest.raises(InvalidTerms):
        shares.allocate(group[0], base(2), [*group, later], splits)
    assert shares.allocate(later, base(2), [*group, later], splits) == [
        (T0 + HOUR, T0 + 2 * HOUR, shares.allocate(later, base(2), [*group, later])[0][2])
    ]
    with pytest.raises(InvalidTerms):
        shares.allocate(group[1], base(2), [*group, later], splits)
