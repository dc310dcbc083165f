"""The issuance's overlap check reads a device's live periods from the last one that
starts before the span (certificates.services.issuance._live_periods_overlapping): the
same periods as the plain overlap condition, for periods of any length, withdrawn ones
left out."""

import datetime as dt
from itertools import pairwise

import pytest
from django.utils import timezone

from certificates.models import IssuedPeriod
from certificates.services.issuance import _issued_within, _live_periods_overlapping
from tests.certificates.factories import DAY

pytestmark = pytest.mark.django_db
QUARTER = dt.timedelta(minutes=15)
# live periods of 1 h, 3 h, 15 min and 2 h with gaps between them
BOUNDS = [DAY + n * QUARTER for n in (0, 4, 8, 20, 28, 29, 33, 41)]
SPANS = [(BOUNDS[i], BOUNDS[i + 1]) for i in range(0, len(BOUNDS), 2)]
WITHDRAWN = (DAY + 22 * QUARTER, DAY + 30 * QUARTER)  # over a gap and the next period


@pytest.fixture
def device(issued):
    """The issued plant's device with only the periods above (and the withdrawn one)."""
    device, issuance = issued.device, issued.issuance
    IssuedPeriod.objects.filter(device_id=device.pk).delete()
    IssuedPeriod.objects.bulk_create(
        IssuedPeriod(
            device_id=device.pk,
            issuance=issuance,
            period_start=start,
            period_end=end,
            unit_start=n * 10_000,
            unit_end=n * 10_000 + 1,
            withdrawn_at=timezone.now() if (start, end) == WITHDRAWN else None,
        )
        for n, (start, end) in enumerate([*SPANS, WITHDRAWN])
    )
    return device


def test_the_bounded_read_finds_what_the_plain_overlap_condition_finds(device):
    live = list(
        IssuedPeriod.objects.filter(device_id=device.pk, withdrawn_at__isnull=True)
        .order_by("period_start")
        .values_list("period_start", "period_end")
    )
    grid = [DAY + n * QUARTER for n in range(-2, 46)]

    # when spans of the grid up to 4 hours long, and the whole grid, are checked
    spans = [(a, b) for i, a in enumerate(grid) for b in grid[i + 1 : i + 17]]
    for start, end in [*spans, (grid[0], grid[-1])]:
        bounded = _live_periods_overlapping(device.pk, start, end)

        # then they find the periods the plain overlap condition finds
        expected = [s for s, e in live if s < end and e > start]
        assert sorted(bounded.values_list("period_start", flat=True)) == expected
        assert _issued_within(device.pk, start, end) == bool(expected)


def test_a_span_inside_a_long_period_finds_it(device):
    # given the 3-hour period; then every quarter inside it finds it, and only it
    period = IssuedPeriod.objects.get(device_id=device.pk, period_start=SPANS[1][0])
    inner = [period.period_start + n * QUARTER for n in range(12 + 1)]
    for start, end in pairwise(inner):
        assert list(_live_periods_overlapping(device.pk, start, end)) == [period]
