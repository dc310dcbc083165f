"""The per-device, per-day generation sums the producer's charts read: kept by the services
that accept readings, equal to summing the readings themselves."""

import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.db.models import Sum
from django.db.models.functions import Trunc

from assets import selectors
from assets import services as asset_services
from assets.models import DeviceGenerationDay, Reading
from assets.readings_io import iter_mapping_rows
from tests.assets.factories import interval_row

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def yesterday_midnight() -> dt.datetime:
    now = dt.datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)


def submit(producer, meter, key, starts_and_wh):
    rows = [interval_row(meter, start, wh, key=key) for start, wh in starts_and_wh]
    return asset_services.readings_submit(actor=producer, rows=iter_mapping_rows(rows))


def days_of(device) -> dict:
    return dict(
        DeviceGenerationDay.objects.filter(device=device).values_list("day", "wh").order_by("day")
    )


def summed_from_readings(device, step: str, start, end) -> list[dict]:
    return list(
        Reading.objects.filter(device=device, start__gte=start, start__lt=end)
        .annotate(bucket=Trunc("start", step, tzinfo=UTC))
        .values("device_id", "bucket")
        .annotate(wh=Sum("wh"))
        .order_by("bucket", "device_id")
    )


def test_accepted_readings_add_to_their_utc_days(producer, meter, key, device):
    # given readings on both sides of a UTC midnight
    midnight = yesterday_midnight()
    # when two batches are accepted, the second adding to a day the first began
    first = submit(producer, meter, key, [(midnight - dt.timedelta(hours=2), 100), (midnight, 7)])
    second = submit(producer, meter, key, [(midnight + dt.timedelta(hours=1), 30)])
    # then each day holds the sum of its readings' Wh, by start
    assert first.status == second.status == "accepted"
    before, after = (midnight - dt.timedelta(hours=2)).date(), midnight.date()
    assert days_of(device) == {before: 100, after: 37}


def test_a_held_batch_counts_only_once_accepted(producer, issuer, meter, key, device):
    # given a batch held for review (one reading far over the device's capacity)
    midnight = yesterday_midnight()
    held = submit(
        producer, meter, key, [(midnight, 10), (midnight + dt.timedelta(hours=1), 500_000)]
    )
    assert held.status == "held"
    assert days_of(device) == {}
    # when the issuing body accepts it
    asset_services.reading_batch_accept(actor=issuer, batch_id=held.batch.pk)
    # then its readings count
    assert days_of(device) == {midnight.date(): 500_010}


def test_the_charts_read_the_same_sums_as_the_readings_give(producer, meter, key, device):
    # given three days of readings, some across midnight
    midnight = yesterday_midnight()
    first = midnight - dt.timedelta(days=1, hours=3)
    submit(producer, meter, key, [(first + dt.timedelta(hours=h), 10 + h) for h in range(40)])
    start, end = first - dt.timedelta(hours=5), dt.datetime.now(UTC)
    for step in ("day", "month"):
        # when the chart asks for days or months
        rows = selectors.device_generation(device_ids=[device.pk], step=step, start=start, end=end)
        # then it gets what summing the readings gives
        assert rows == summed_from_readings(device, step, start, end), step
    assert sum(row["wh"] for row in rows) == sum(10 + h for h in range(40))


def test_the_migration_fills_the_sums_from_the_readings_already_accepted(
    producer, meter, key, device
):
    # given accepted readings whose sums are lost
    midnight = yesterday_midnight()
    submit(producer, meter, key, [(midnight - dt.timedelta(hours=1), 5), (midnight, 6)])
    expected = days_of(device)
    DeviceGenerationDay.objects.all().delete()
    # when the migration's backfill runs
    migration = importlib.import_module("assets.migrations.0003_generation_per_day")
    migration.backfill(apps, None)
    # then the sums are back
    assert (
        days_of(device)
        == expected
        == {midnight.date() - dt.timedelta(days=1): 5, midnight.date(): 6}
    )
