"""A contract's period parameter (`?period=` of a dry run, a trigger): years 1000-8999 in
ASCII digits, as every date the API takes. `?period=9999-12` and `?period=0000-01` on
`GET /contracts/{id}/dry-run/` were 500s (datetime's year 10000 and year 0), and
Arabic-Indic digits were taken as a month of their own trigger text."""

import datetime as dt
from types import SimpleNamespace

import pytest

from contracts.errors import InvalidTerms
from contracts.kinds.base import month_bounds
from contracts.kinds.community import period_bounds
from contracts.kinds.storage import day_bounds

UTC = dt.UTC


def test_a_month_in_range_is_its_bounds():
    assert month_bounds("2026-12") == (
        dt.datetime(2026, 12, 1, tzinfo=UTC),
        dt.datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert month_bounds("8999-12")[1] == dt.datetime(9000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "period",
    [
        "9999-12",
        "0000-01",
        "0999-12",
        "9000-01",
        "2026-13",
        "\u0662\u0660\u0662\u0666-\u0660\u0661",
    ],
)
def test_a_month_out_of_range_is_invalid_terms(period):
    with pytest.raises(InvalidTerms):
        month_bounds(period)


@pytest.mark.parametrize(
    "day", ["9999-12-31", "0000-01-01", "2026-02-30", "\u0662\u0660\u0662\u0666-01-01"]
)
def test_a_day_out_of_range_is_invalid_terms(day):
    with pytest.raises(InvalidTerms):
        day_bounds(day)
    assert day_bounds("8999-12-31")[1] == dt.datetime(9000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("granularity", "value", "ok"),
    [
        ("day", "9999-12-31", False),
        ("hour", "9999-12-31T23:00", False),
        ("hour", "0000-01-01T00:00", False),
        ("day", "8999-12-31", True),
        ("hour", "8999-12-31T23:00", True),
    ],
)
def test_a_trigger_takes_years_1000_to_8999(granularity, value, ok):
    contract = SimpleNamespace(terms={"granularity": granularity})
    if ok:
        start, end = period_bounds(contract, granularity, value)
        assert start.isoformat().startswith(value) and end > start
    else:
        with pytest.raises(InvalidTerms):
            period_bounds(contract, granularity, value)
