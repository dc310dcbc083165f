import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certificates.allocation import add_months, expiry_date, split_by_shares, split_by_weights


def test_split_largest_remainder_gives_leftover_to_largest_fractions():
    # given 10 Wh over 1/2, 1/3, 1/6: exact 5, 3.33, 1.67
    # when
    parts = split_by_shares(10, [Fraction(1, 2), Fraction(1, 3), Fraction(1, 6)])
    # then the one leftover Wh goes to the largest remainder (0.67)
    assert parts == [5, 3, 2]


def test_split_ties_rotate_with_first_tie():
    thirds = [Fraction(1, 3)] * 3
    assert split_by_shares(1, thirds, first_tie=0) == [1, 0, 0]
    assert split_by_shares(1, thirds, first_tie=1) == [0, 1, 0]
    assert split_by_shares(2, thirds, first_tie=2) == [1, 0, 1]


def test_split_refuses_shares_not_adding_up_to_one():
    with pytest.raises(ValueError):
        split_by_shares(10, [Fraction(1, 2), Fraction(1, 3)])


@st.composite
def shares(draw):
    weights = draw(st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=8))
    total = sum(weights)
    return [Fraction(w, total) for w in weights]


@given(volume=st.integers(min_value=0, max_value=10**12), shares=shares(), tie=st.integers(0, 7))
def test_split_never_loses_a_wh_and_stays_within_one_of_exact(volume, shares, tie):
    parts = split_by_shares(volume, shares, first_tie=tie)
    assert sum(parts) == volume
    for part, share in zip(parts, shares, strict=True):
        assert abs(part - volume * share) < 1


def test_add_months_clamps_to_month_end():
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2023, 12, 15), 12) == dt.date(2024, 12, 15)
    assert add_months(dt.date(2024, 11, 30), 3) == dt.date(2025, 2, 28)


def test_expiry_counts_from_the_day_production_ends():
    midnight = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert expiry_date(midnight, 12) == dt.date(2025, 1, 1)
    assert expiry_date(midnight + dt.timedelta(hours=1), 12) == dt.date(2025, 1, 2)
    assert expiry_date(midnight, None) is None


@given(
    volume=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
    first_tie=st.integers(min_value=0, max_value=20),
)
def test_integer_weights_split_exactly_as_the_same_fractions_do(volume, weights, first_tie):
    # given the same shares as integer weights and as fractions of their sum
    total = sum(weights)
    shares = [Fraction(w, total) for w in weights]
    tie = first_tie % len(weights)

    # when
    parts = split_by_weights(volume, weights, first_tie=tie)

    # then: the same parts, every Wh placed
    assert parts == split_by_shares(volume, shares, first_tie=tie)
    assert sum(parts) == volume
