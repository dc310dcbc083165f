"""Every date-time the API takes, in a body or a parameter, is what the schema's pattern
says (`registry.datetimes.DATE_TIME`): RFC 3339, years 1000-8999, offsets up to ±15:59.

Fuzzing seed 13 sent a counter reset at `0001-01-01T00:00:00+19:00`: a valid RFC 3339
time, so schema-valid, but its UTC instant is before year 1 and DRF answered 400 "Datetime
value out of range". The same text in a readings row was an OverflowError, a 500."""

import datetime as dt

import pytest
from rest_framework.exceptions import ValidationError

from registry.api.fields import BoundedDateTimeField
from registry.datetimes import DATE_TIME, DATE_TIME_RE
from tests.assets.factories import DeviceFactory, MeterFactory
from tests.conftest import client_for
from tests.factories import OrganisationFactory, member_of
from tests.registry.schema_walk import nodes_taken
from tests.registry.test_schema_fuzz_findings import (
    body_schema,
    parameter,
    schema,  # noqa: F401 (a fixture)
    schema_allows,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "real"),
    [
        ("2024-02-29T00:00:00Z", True),  # a leap year
        ("2000-02-29T00:00:00Z", True),  # a century divisible by 400
        ("2100-02-29T00:00:00Z", False),  # a century that is not
        ("2026-02-29T00:00:00Z", False),
        ("2026-04-31T00:00:00Z", False),
        ("2026-12-31T23:59:59.999999+15:59", True),
        ("1000-01-01T00:00:00+15:59", True),  # 0999-12-31 in UTC: still in range
        ("8999-12-31T23:59:59-15:59", True),  # 9000-01-01 in UTC
        ("0999-12-31T00:00:00Z", False),
        ("9000-01-01T00:00:00Z", False),
        ("2026-01-01T00:00:00+16:00", False),
        ("2026-01-01T00:00:00", False),  # no offset
        ("2026-01-01 00:00:00Z", False),
        ("2026-01-01t00:00:00z", False),
        ("2026-01-01T00:00:00.1234567Z", False),
        ("٢٠٢٦-01-01T00:00:00Z", False),  # Arabic-Indic digits: `\d` in Python takes them
        ("2026-01-01T00:00:00Z\n", False),  # Python's `$` takes a final newline
    ],
)
def test_the_pattern_takes_real_rfc3339_times_in_range(text, real):
    assert bool(DATE_TIME_RE.fullmatch(text)) is real


def test_the_pattern_knows_every_day_of_years_1000_to_8999():
    day, days = dt.date(1000, 1, 1), set()
    while day.year < 9000:
        days.add(day.isoformat())
        day += dt.timedelta(days=1)
    for year in range(1000, 9000, 7):  # every month length and leap rule, in a 7th of the years
        for month in range(1, 13):
            for number in range(1, 32):
                date = f"{year:04d}-{month:02d}-{number:02d}"
                assert bool(DATE_TIME_RE.fullmatch(f"{date}T12:00:00Z")) is (date in days), date


@pytest.mark.parametrize(
    "text", ["1000-01-01T00:00:00+15:59", "8999-12-31T23:59:59.999999-15:59", "2024-02-29T01:00Z"]
)
def test_the_field_converts_what_the_pattern_takes_or_refuses_it_with_the_hint(text):
    field = BoundedDateTimeField()
    if DATE_TIME_RE.fullmatch(text):
        assert field.to_internal_value(text).utcoffset() == dt.timedelta(0)
    else:
        with pytest.raises(ValidationError, match="RFC 3339"):
            field.to_internal_value(text)


def test_every_date_time_the_api_takes_carries_the_pattern(schema):  # noqa: F811
    taken = list(nodes_taken(schema, lambda node: node.get("format") == "date-time"))
    assert len(taken) > 40, "the sweep found too few date-times"
    for path, found in taken:
        assert found.get("pattern") == DATE_TIME, (path, found)


@pytest.fixture
def producer():
    return member_of(OrganisationFactory())


def test_the_fuzzers_counter_reset_is_schema_invalid_and_refused_with_the_hint(schema):  # noqa: F811
    # given: seed 13's request
    organisation = OrganisationFactory()
    meter = MeterFactory(device=DeviceFactory(organisation=organisation))
    body = {"time": "0001-01-01T00:00:00+19:00", "counter_wh": 0, "reason": "r"}
    documented = body_schema(schema, "/api/v1/meters/{serial}/counter-resets/", "post")
    # then: the schema refuses it ...
    assert not schema_allows(schema, documented, body)
    assert schema_allows(schema, documented, {**body, "time": "2026-01-01T00:00:00+15:59"})
    # ... and so does the API, saying what it takes
    response = client_for(member_of(organisation)).post(
        f"/api/v1/meters/{meter.serial}/counter-resets/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["extra"]["fields"]["time"][0].startswith("Give an RFC 3339")


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("2024-02-29T00:00:00Z", 200),
        ("2026-01-01T00:00:00%2B15:59", 200),
        ("2100-02-29T00:00:00Z", 400),
        ("2026-01-01%2000:00:00Z", 400),  # django-filter took a space for the T
        ("2026-01-01T00:00:00", 400),  # and no offset at all
        ("2026-01-01T00:00:00%2B18:35", 400),
        ("2026-01-01T00:00:00Z%0A", 400),  # a final newline (DATE_TIME_RE.match took it)
    ],
)
def test_a_date_time_filter_takes_what_its_schema_says(schema, producer, moment, status):  # noqa: F811
    documented = parameter(schema, "/api/v1/readings/", "period_start")["schema"]
    text = moment.replace("%2B", "+").replace("%20", " ")
    if "%0A" not in moment:  # the Python validator's `$` takes the newline; ECMA-262's not
        assert schema_allows(schema, documented, text) is (status == 200)
    response = client_for(producer).get(f"/api/v1/readings/?period_start={moment}")
    assert response.status_code == status, response.content
