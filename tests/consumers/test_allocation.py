"""The pure allocation arithmetic: exact conservation of Wh (property tests) and the keys."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from consumers.allocation import (
    DYNAMIC,
    STATIC,
    allocate,
    match_hourly,
    money_minor,
    split_largest_remainder,
)

T, M = 6, 4
wh = st.integers(min_value=0, max_value=50_000)


@settings(max_examples=150, deadline=None)
@given(
    volume=arrays(np.int64, T, elements=wh),
    weights=arrays(np.int64, (T, M), elements=st.integers(1, 1000)),
)
def test_split_sums_exactly_and_stays_within_one_wh_of_the_exact_share(volume, weights):
    # when
    parts = split_largest_remainder(volume, weights)

    # then
    assert (parts.sum(axis=1) == volume).all()
    exact = volume[:, None] * weights / weights.sum(axis=1)[:, None]
    assert (np.abs(parts - exact) < 1).all()


@settings(max_examples=150, deadline=None)
@given(
    production=arrays(np.int64, T, elements=wh),
    consumption=arrays(np.int64, (T, M), elements=wh),
    active=arrays(bool, (T, M)),
    shares=arrays(np.int64, M, elements=st.integers(1, 97)),
    key=st.sampled_from([STATIC, DYNAMIC]),
)
def test_no_wh_is_lost_or_created(production, consumption, active, shares, key):
    # when
    result = allocate(
        production=production,
        consumption=consumption,
        active=active,
        key=key,
        static_weights=shares,
    )

    # then every interval's production is allocated or exported, to the Wh
    assert (result.allocated.sum(axis=1) + result.community_exported == production).all()
    # members outside their period get nothing; nobody gets more than it consumed
    assert (result.allocated[~active] == 0).all()
    assert (result.allocated <= np.where(active, consumption, 0)).all()
    assert (result.allocated >= 0).all() and (result.imported >= 0).all()
    # what members export adds up to the community's export whenever anyone is active
    anyone = active.any(axis=1)
    assert (result.exported.sum(axis=1)[anyone] == result.community_exported[anyone]).all()


def test_dynamic_key_follows_consumption_and_exports_the_surplus():
    # given 1,000 Wh shared by members consuming 300 and 100 (one member not yet joined)
    production = np.array([1000, 200])
    consumption = np.array([[300, 100, 999], [300, 100, 999]])
    active = np.array([[True, True, False], [True, True, False]])

    # when
    result = allocate(production=production, consumption=consumption, active=active, key=DYNAMIC)

    # then
    assert result.allocated.tolist() == [[300, 100, 0], [150, 50, 0]]
    assert result.community_exported.tolist() == [600, 0]
    assert result.imported.tolist() == [[0, 0, 0], [150, 50, 0]]


def test_static_key_caps_at_consumption_and_exports_the_rest():
    # given shares 1/2, 1/4, 1/4 of 1,000 Wh
    result = allocate(
        production=np.array([1000]),
        consumption=np.array([[100, 400, 250]]),
        active=np.ones((1, 3), dtype=bool),
        key=STATIC,
        static_weights=np.array([2, 1, 1]),
    )

    # then
    assert result.allocated.tolist() == [[100, 250, 250]]
    assert result.exported.tolist() == [[400, 0, 0]]
    assert result.community_exported.tolist() == [400]


def test_static_shares_of_absent_members_go_to_the_active_ones():
    # given a member who joins in the second interval
    result = allocate(
        production=np.array([900, 900]),
        consumption=np.array([[1000, 1000], [1000, 1000]]),
        active=np.array([[True, False], [True, True]]),
        key=STATIC,
        static_weights=np.array([1, 2]),
    )

    # then
    assert result.allocated.tolist() == [[900, 0], [300, 600]]


def test_money_per_interval_adds_up_to_the_rounded_total():
    # given 333 Wh per interval at 25 cents/kWh over three intervals (24.975 cents in all)
    amounts = money_minor(np.array([[333], [333], [333]]), 25)

    # then integer cents per interval, adding up to floor(total)
    assert amounts[:, 0].tolist() == [8, 8, 8]
    assert amounts.sum() == 999 * 25 // 1000


def test_hourly_matching_does_not_carry_surplus_to_other_hours():
    # given
    matching = match_hourly(np.array([500, 500, 0]), np.array([1000, 0, 300]))

    # when
    matched, consumed = matching.cfe()

    # then
    assert matching.matched.tolist() == [500, 0, 0]
    assert (int(matched[0]), int(consumed[0])) == (500, 1000)
