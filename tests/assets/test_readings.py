"""readings_submit: every validation rule shows its per-row error and stores nothing."""

import datetime as dt
import json

import pytest
from django.test import override_settings

from accounts.models import Membership
from assets import services
from assets.canonical import format_time, reading_bytes
from assets.errors import ReadingsConflict, ReadingsMalformed, ReadingsRejected
from assets.models import Device, Meter, PendingReading, Reading, ReadingBatch
from assets.readings_io import iter_mapping_rows
from ledger.merkle import leaf_hash, root_from_leaf_hashes
from ledger.models import PendingEvent
from tests.assets.factories import (
    DeviceFactory,
    MeterFactory,
    add_key,
    counter_row,
    hours_ago,
    interval_row,
    signing_key,
)
from tests.factories import OrganisationFactory, member_of

UTC = dt.UTC


def submit(actor, rows, **kwargs):
    return services.readings_submit(actor=actor, rows=iter_mapping_rows(rows), **kwargs)


def last_event() -> dict:
    return json.loads(bytes(PendingEvent.objects.latest("id").event))


def rejected(actor, rows, snapshot, *, error=ReadingsRejected, **kwargs) -> list[dict]:
    """Submit, expect the whole batch refused, check nothing changed; return the row errors."""
    before = snapshot()
    with pytest.raises(error) as caught:
        submit(actor, rows, **kwargs)
    assert snapshot() == before
    return caught.value.extra["errors"]


def day(meter, key, hours=24, wh=1000):
    return [interval_row(meter, hours_ago(h), wh + h, key=key) for h in range(hours, 0, -1)]


# -- acceptance ----------------------------------------------------------------------------


def test_accepted_batch_stores_readings_and_one_event_with_the_merkle_root(
    producer, meter, key, snapshot
):
    # given
    rows = day(meter, key)
    before = snapshot()
    # when
    result = submit(producer, rows)
    # then
    batch = result.batch
    assert (result.status, result.stored, batch.size) == ("accepted", 24, 24)
    after = snapshot()
    assert after["Reading"] == before["Reading"] + 24
    assert after["ReadingBatch"] == before["ReadingBatch"] + 1
    assert after["ledger_events"] == before["ledger_events"] + 1
    readings = list(Reading.objects.filter(batch=batch).order_by("index_in_batch"))
    assert [r.index_in_batch for r in readings] == list(range(24))
    assert all(r.is_signed and len(bytes(r.signature)) == 64 for r in readings)
    leaves = [leaf_hash(reading_bytes(meter.serial, r.start, r.end, r.wh)) for r in readings]
    assert batch.merkle_root == root_from_leaf_hashes(leaves).hex()
    event = last_event()
    assert event["type"] == "reading_batch.accepted"
    assert event["subject"] == [
        f"reading_batch:{batch.pk}",
        f"device:{meter.device_id}",
        f"meter:{meter.pk}",
    ]
    assert event["data"]["merkle_root"] == batch.merkle_root
    assert event["data"]["size"] == 24
    assert event["data"]["total_wh"] == sum(r.wh for r in readings)
    assert event["data"]["meters"] == [
        {"serial": meter.serial, "device_id": meter.device_id, "readings": 24, "wh": batch.total_wh}
    ]
    assert batch.device_id == meter.device_id and batch.meter_id == meter.pk


def test_resending_identical_readings_is_a_no_op(producer, meter, key, snapshot):
    rows = day(meter, key)
    submit(producer, rows)
    before = snapshot()
    result = submit(producer, rows)
    assert (result.status, result.stored, result.duplicates, result.batch) == (
        "unchanged",
        0,
        24,
        None,
    )
    assert snapshot() == before


def test_resent_rows_mixed_with_new_ones_store_only_the_new(producer, meter, key):
    submit(producer, day(meter, key, hours=12))
    result = submit(producer, day(meter, key, hours=24))
    assert (result.stored, result.duplicates) == (12, 12)
    assert Reading.objects.filter(meter=meter).count() == 24


def test_conflicting_resend_is_a_409_and_stores_nothing(producer, meter, key, snapshot):
    submit(producer, day(meter, key))
    changed = day(meter, key, wh=2000)
    errors = rejected(producer, changed, snapshot, error=ReadingsConflict)
    assert len(errors) == 24 and {e["code"] for e in errors} == {"reading_conflict"}
    assert errors[0]["row"] == 1 and errors[0]["field"] == "wh"


@pytest.mark.parametrize("spans_per_query", [1, 2, 500])
def test_stored_readings_are_looked_up_on_each_devices_own_span(
    producer, producer_org, snapshot, monkeypatch, spans_per_query
):
    # given three devices: A has readings 10-6 hours ago, B 30-20 hours ago, C none
    from assets.ingest import resolve

    monkeypatch.setattr(resolve, "SPANS_PER_QUERY", spans_per_query)
    a, b, c = (MeterFactory(device=DeviceFactory(organisation=producer_org)) for _ in range(3))
    submit(producer, [interval_row(a, hours_ago(h), 10) for h in range(10, 5, -1)])
    submit(producer, [interval_row(b, hours_ago(h), 20) for h in range(30, 19, -1)])
    # when a batch for all three sends different values inside each device's own span,
    # and on B and C at hours where only another device has readings
    rows = [
        interval_row(a, hours_ago(8), 11),  # A's stored hour: a conflict
        interval_row(b, hours_ago(25), 21),  # B's stored hour: a conflict
        interval_row(b, hours_ago(8), 5),  # A's hour on B: new
        interval_row(c, hours_ago(25), 5),  # B's hour on C: new
        interval_row(c, hours_ago(8), 5),  # A's hour on C: new
    ]
    errors = rejected(producer, rows, snapshot, error=ReadingsConflict)
    # then only the rows meeting their own device's stored readings conflict, whatever the
    # number of devices one query covers
    assert [(e["row"], e["code"]) for e in errors] == [
        (1, "reading_conflict"),
        (2, "reading_conflict"),
    ]
    assert submit(producer, rows[2:]).stored == 3


def test_unsigned_readings_when_policy_allows(producer, producer_org):
    meter = MeterFactory(device=DeviceFactory(organisation=producer_org))
    result = submit(producer, [interval_row(meter, hours_ago(2), 10)])
    reading = Reading.objects.get(batch=result.batch)
    assert not reading.is_signed and reading.signature is None


def test_quarter_hour_device(producer, producer_org):
    device = DeviceFactory(organisation=producer_org, interval_minutes=15)
    meter = MeterFactory(device=device)
    start = hours_ago(2)
    rows = [
        interval_row(meter, start + dt.timedelta(minutes=15 * i), 100, minutes=15) for i in range(8)
    ]
    assert submit(producer, rows).stored == 8


def test_times_with_offsets_are_normalised_to_utc(producer, meter, key):
    start = hours_ago(3)
    berlin = dt.timezone(dt.timedelta(hours=2))
    row = interval_row(meter, start, 42, key=key)
    row["start"] = start.astimezone(berlin).isoformat()
    row["end"] = (start + dt.timedelta(hours=1)).astimezone(berlin).isoformat()
    assert submit(producer, [row]).stored == 1
    assert Reading.objects.get(meter=meter).start == start


# -- per-row rules ---------------------------------------------------------------------------


def one(meter, key, /, **changes):
    """A good row with `changes`; a change given as a function is called now (a time
    computed when tests are collected may fall in another hour than the row's start)."""
    row = interval_row(meter, hours_ago(5), 1000, key=key)
    row.update({name: v() if callable(v) else v for name, v in changes.items()})
    return row


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"end": lambda: hours_ago(6).isoformat()}, "end", "end_not_after_start"),
        ({"end": lambda: hours_ago(5).isoformat()}, "end", "end_not_after_start"),
        ({"end": lambda: hours_ago(3).isoformat()}, "end", "wrong_duration"),
        ({"wh": "12.5"}, "wh", "invalid_integer"),
        ({"wh": "1e3"}, "wh", "invalid_integer"),
        ({"wh": 12.5}, "wh", "invalid_integer"),
        ({"wh": True}, "wh", "invalid_integer"),
        ({"wh": -5}, "wh", "negative"),
        ({"wh": "-5"}, "wh", "negative"),
        ({"wh": 2**53}, "wh", "too_large"),
        ({"wh": "9" * 5000}, "wh", "too_large"),  # int() of it raised ValueError: a 500
        ({"start": "yesterday"}, "start", "invalid_time"),
        ({"start": "2025-01-01T10:00:00"}, "start", "naive_time"),
        # valid ISO 8601 whose UTC instant is outside Python's calendar: an OverflowError
        ({"start": "0001-01-01T00:00:00+19:00"}, "start", "invalid_time"),
        ({"end": "9999-12-31T23:00:00-05:00"}, "end", "invalid_time"),
        # outside the schema's pattern: a space for the T, an offset PostgreSQL cannot store
        ({"start": "2025-01-01 10:00:00+00:00"}, "start", "invalid_time"),
        ({"end": "2025-01-01T10:00:00+16:00"}, "end", "invalid_time"),
        ({"meter": "NO-SUCH-METER"}, "meter", "unknown_meter"),
        ({"meter": "bad serial!"}, "meter", "invalid_serial"),
        ({"meter": "SRC-PV-0001\n"}, "meter", "invalid_serial"),  # Python's `$` took it
        ({"signature": "not-base64!"}, "signature", "signature_malformed"),
        ({"colour": "green"}, "colour", "unknown_field"),
        ({"wh": None}, "wh", "required"),
    ],
)
def test_row_rules(producer, meter, key, snapshot, changes, field, code):
    good = interval_row(meter, hours_ago(9), 1, key=key)
    errors = rejected(producer, [good, one(meter, key, **changes)], snapshot)
    assert errors == [{"row": 2, "field": field, "code": code, "message": errors[0]["message"]}], (
        errors
    )
    assert errors[0]["message"]


def test_not_aligned_to_the_interval(producer, meter, key, snapshot):
    start = hours_ago(5) + dt.timedelta(minutes=30)
    errors = rejected(producer, [interval_row(meter, start, 10, key=key)], snapshot)
    assert errors[0]["code"] == "not_aligned" and errors[0]["field"] == "start"


def test_not_in_the_future(producer, meter, key, snapshot):
    errors = rejected(producer, [interval_row(meter, hours_ago(0), 10, key=key)], snapshot)
    assert errors[0]["code"] == "in_future"


def test_not_an_object(producer, meter, key, snapshot):
    errors = rejected(producer, [one(meter, key), ["SRC", 1]], snapshot)
    assert errors[0]["code"] == "not_an_object" and errors[0]["row"] == 2


def test_wrong_signature(producer, meter, key, snapshot):
    row = one(meter, key)
    row["wh"] += 1  # signed bytes no longer match
    errors = rejected(producer, [row], snapshot)
    assert errors[0]["code"] == "signature_invalid" and errors[0]["field"] == "signature"


def test_signature_by_another_key(producer, meter, snapshot):
    errors = rejected(producer, [one(meter, signing_key(99))], snapshot)
    assert errors[0]["code"] == "signature_invalid"


def test_signature_required_by_policy(producer, meter, snapshot):
    Device.objects.filter(pk=meter.device_id).update(require_signed_readings=True)
    row = one(meter, None)
    errors = rejected(producer, [row], snapshot)
    assert errors[0]["code"] == "signature_required"


def test_no_key_valid_at_that_time(producer, producer_org, snapshot):
    meter = MeterFactory(device=DeviceFactory(organisation=producer_org))
    key = signing_key(5)
    add_key(meter, key, valid_from=hours_ago(3))
    errors = rejected(producer, [interval_row(meter, hours_ago(5), 10, key=key)], snapshot)
    assert errors[0]["code"] == "no_key"


@pytest.mark.parametrize(
    "status", ["draft", "submitted", "rejected", "suspended", "decommissioned"]
)
def test_device_must_be_approved_or_active(producer, meter, key, snapshot, status):
    Device.objects.filter(pk=meter.device_id).update(status=status)
    errors = rejected(producer, [one(meter, key)], snapshot)
    assert errors[0]["code"] == "device_not_active" and errors[0]["field"] == "meter"


def test_approved_device_takes_readings(producer, meter, key):
    Device.objects.filter(pk=meter.device_id).update(status="approved")
    assert submit(producer, [one(meter, key)]).stored == 1


def test_someone_elses_meter(meter, key, snapshot):
    outsider = member_of(OrganisationFactory())
    errors = rejected(outsider, [one(meter, key)], snapshot)
    assert errors[0]["code"] == "unknown_meter"  # the same as a serial that does not exist


def test_meter_not_of_the_named_device(producer, producer_org, meter, key, snapshot):
    other = DeviceFactory(organisation=producer_org)
    errors = rejected(producer, [one(meter, key)], snapshot, device_id=other.pk)
    assert errors[0]["code"] == "meter_not_of_device"


def test_one_organisation_per_batch(producer, producer_org, meter, key, snapshot):
    second_org = OrganisationFactory()
    Membership.objects.create(user=producer, organisation=second_org, role="operator")
    foreign = MeterFactory(device=DeviceFactory(organisation=second_org))
    rows = [one(meter, key), interval_row(foreign, hours_ago(4), 5)]
    errors = rejected(producer, rows, snapshot)
    assert errors[0]["code"] == "mixed_organisations" and errors[0]["row"] == 2


def test_meter_window(producer, meter, key, snapshot):
    Meter.objects.filter(pk=meter.pk).update(installed_at=hours_ago(4))
    errors = rejected(producer, [one(meter, key)], snapshot)
    assert errors[0]["code"] == "before_meter_installed"
    Meter.objects.filter(pk=meter.pk).update(installed_at=None, removed_at=hours_ago(6))
    errors = rejected(producer, [one(meter, key)], snapshot)
    assert errors[0]["code"] == "after_meter_removed"


def test_duplicated_and_overlapping_rows_in_one_batch(producer, meter, key, snapshot):
    a = interval_row(meter, hours_ago(5), 100, key=key)
    b = interval_row(meter, hours_ago(4), 100, key=key)
    b_other = interval_row(meter, hours_ago(4), 101, key=key)
    errors = rejected(producer, [a, b, dict(a), b_other], snapshot)
    assert [(e["row"], e["code"]) for e in errors] == [
        (3, "duplicate_in_batch"),
        (4, "overlap_in_batch"),
    ]
    assert "Row 1" in errors[0]["message"]


def test_every_error_is_reported_with_its_row(producer, meter, key, snapshot):
    rows = day(meter, key, hours=10)
    rows[2]["wh"] = "x"
    rows[7]["meter"] = "NOPE"
    errors = rejected(producer, rows, snapshot)
    assert [(e["row"], e["code"]) for e in errors] == [(3, "invalid_integer"), (8, "unknown_meter")]


@override_settings(READINGS_MAX_ERRORS_REPORTED=5)
def test_error_list_is_capped_but_counted(producer, meter, key, snapshot):
    rows = [dict(r, wh="bad") for r in day(meter, key, hours=12)]
    before = snapshot()
    with pytest.raises(ReadingsRejected) as caught:
        submit(producer, rows)
    assert snapshot() == before
    assert len(caught.value.extra["errors"]) == 5 and caught.value.extra["error_count"] == 12


@override_settings(READINGS_BATCH_MAX_ROWS=10)
def test_too_many_rows(producer, meter, key, snapshot):
    before = snapshot()
    with pytest.raises(ReadingsMalformed):
        submit(producer, day(meter, key, hours=11))
    assert snapshot() == before


def test_empty_batch(producer, snapshot):
    before = snapshot()
    with pytest.raises(ReadingsMalformed):
        submit(producer, [])
    assert snapshot() == before


# -- accept the valid rows -------------------------------------------------------------------


def test_accept_valid_keeps_the_good_rows_and_reports_the_rest(producer, meter, key, snapshot):
    rows = day(meter, key, hours=6)
    rows[1]["wh"] = "bad"
    rows[4]["signature"] = rows[3]["signature"]
    before = snapshot()
    result = submit(producer, rows, accept_valid=True)
    assert (result.status, result.stored, result.error_count) == ("accepted", 4, 2)
    assert [(e["row"], e["code"]) for e in result.errors] == [
        (2, "invalid_integer"),
        (5, "signature_invalid"),
    ]
    after = snapshot()
    assert after["Reading"] == before["Reading"] + 4
    assert after["ledger_events"] == before["ledger_events"] + 1
    assert result.batch.size == 4


def test_accept_valid_with_nothing_valid_is_still_rejected(producer, meter, key, snapshot):
    rows = [dict(r, wh="bad") for r in day(meter, key, hours=3)]
    rejected(producer, rows, snapshot, accept_valid=True)


# -- review ------------------------------------------------------------------------------------


def test_over_capacity_holds_the_whole_batch_for_review(producer, meter, key, snapshot):
    # capacity 100 kW, hour, margin 1.1: 110,000 Wh is the limit
    rows = day(meter, key, hours=4)
    rows.append(interval_row(meter, hours_ago(0) - dt.timedelta(hours=0), 0, key=key))
    rows.pop()
    rows[2] = interval_row(meter, hours_ago(2), 110_001, key=key)
    before = snapshot()
    result = submit(producer, rows)
    assert result.status == "held" and result.stored == 4
    after = snapshot()
    assert after["Reading"] == before["Reading"]
    assert after["PendingReading"] == before["PendingReading"] + 4
    assert after["ledger_events"] == before["ledger_events"] + 1
    assert result.batch.review_reasons == [{"code": "over_capacity", "rows": 1}]
    flagged = PendingReading.objects.get(batch=result.batch, flags="over_capacity")
    assert flagged.wh == 110_001
    event = last_event()
    assert event["type"] == "reading_batch.held"
    assert event["data"]["review"][0]["code"] == "over_capacity"


def test_at_the_margin_is_accepted(producer, meter, key):
    assert submit(producer, [interval_row(meter, hours_ago(2), 110_000, key=key)]).status == (
        "accepted"
    )


@override_settings(READINGS_CAPACITY_MARGIN="1.5")
def test_margin_is_a_setting(producer, meter, key):
    assert submit(producer, [interval_row(meter, hours_ago(2), 140_000, key=key)]).status == (
        "accepted"
    )


def test_backdated_readings_hold_the_batch(producer, meter, key):
    old = hours_ago(24 * 63)
    result = submit(producer, [interval_row(meter, old, 100, key=key), one(meter, key)])
    assert result.status == "held"
    assert result.batch.review_reasons == [{"code": "backdated", "rows": 1}]
    with override_settings(READINGS_BACKDATE_LIMIT_DAYS=90):
        older = interval_row(meter, hours_ago(24 * 64), 100, key=key)
        assert submit(producer, [older]).status == "accepted"


def test_a_reading_clashing_with_a_held_one_is_a_conflict(producer, meter, key, snapshot):
    submit(producer, [interval_row(meter, hours_ago(2), 999_999, key=key)])
    errors = rejected(
        producer, [interval_row(meter, hours_ago(2), 5, key=key)], snapshot, error=ReadingsConflict
    )
    assert errors[0]["code"] == "held_reading_conflict"
    again = submit(producer, [interval_row(meter, hours_ago(2), 999_999, key=key)])
    assert again.status == "unchanged" and again.duplicates == 1


# -- counters ----------------------------------------------------------------------------------


def test_counters_become_intervals(producer, meter, key, snapshot):
    values = [5_000, 5_000, 5_800, 12_000, 30_500]
    rows = [counter_row(meter, hours_ago(5 - i), v, key=key) for i, v in enumerate(values)]
    before = snapshot()
    result = submit(producer, rows)
    assert (result.stored, result.baselines) == (4, 1)
    readings = list(Reading.objects.filter(meter=meter).order_by("start"))
    assert [r.wh for r in readings] == [0, 800, 6_200, 18_500]
    assert [r.counter_wh for r in readings] == values[1:]
    assert readings[0].start == hours_ago(5) and readings[-1].end == hours_ago(1)
    meter.refresh_from_db()
    assert (meter.counter_at, meter.counter_wh) == (hours_ago(1), 30_500)
    assert snapshot()["ledger_events"] == before["ledger_events"] + 1
    assert last_event()["data"]["counter_updates"] == {
        meter.serial: {"time": format_time(hours_ago(1)), "counter_wh": 30_500}
    }
    # the next batch continues from the stored counter
    assert submit(producer, [counter_row(meter, hours_ago(0), 31_000, key=key)]).stored == 1
    assert Reading.objects.get(meter=meter, start=hours_ago(1)).wh == 500


def test_counter_rows_may_come_out_of_order(producer, meter, key):
    rows = [counter_row(meter, hours_ago(h), 1000 * (10 - h), key=key) for h in (3, 5, 4)]
    assert submit(producer, rows).stored == 2
    assert [r.wh for r in Reading.objects.filter(meter=meter).order_by("start")] == [1000, 1000]


def test_a_decreasing_counter_is_an_error_never_a_negative(producer, meter, key, snapshot):
    submit(producer, [counter_row(meter, hours_ago(5), 999_000, key=key)])
    errors = rejected(producer, [counter_row(meter, hours_ago(4), 120, key=key)], snapshot)
    assert errors[0]["code"] == "counter_decreased" and errors[0]["field"] == "counter_wh"
    assert "reset" in errors[0]["message"]


def test_a_counter_gap_is_an_error(producer, meter, key, snapshot):
    submit(producer, [counter_row(meter, hours_ago(5), 1000, key=key)])
    errors = rejected(producer, [counter_row(meter, hours_ago(2), 4000, key=key)], snapshot)
    assert errors[0]["code"] == "counter_gap"


def test_counter_resend_is_a_no_op_and_a_changed_one_a_conflict(producer, meter, key, snapshot):
    rows = [counter_row(meter, hours_ago(h), 100 * (9 - h), key=key) for h in (4, 3, 2)]
    submit(producer, rows)
    before = snapshot()
    assert submit(producer, rows).status == "unchanged"
    assert snapshot() == before
    changed = [counter_row(meter, hours_ago(3), 555, key=key)]
    errors = rejected(producer, changed, snapshot, error=ReadingsConflict)
    assert errors[0]["code"] == "counter_conflict"


def test_first_counter_alone_sets_the_baseline_with_an_event(producer, meter, key, snapshot):
    before = snapshot()
    result = submit(producer, [counter_row(meter, hours_ago(3), 77, key=key)])
    assert (result.status, result.stored, result.baselines) == ("accepted", 0, 1)
    assert result.batch.size == 0
    after = snapshot()
    assert after["Reading"] == before["Reading"]
    assert after["ledger_events"] == before["ledger_events"] + 1


def test_signed_counter_with_a_wrong_signature(producer, meter, key, snapshot):
    row = counter_row(meter, hours_ago(3), 77, key=key)
    row["counter_wh"] = 78
    errors = rejected(producer, [row], snapshot)
    assert errors[0]["code"] == "signature_invalid"


def test_batch_covering_several_meters_and_devices(producer, producer_org, meter, key):
    other = MeterFactory(device=DeviceFactory(organisation=producer_org))
    rows = day(meter, key, hours=3) + [interval_row(other, hours_ago(h), 7) for h in (3, 2, 1)]
    result = submit(producer, rows)
    assert result.stored == 6
    assert result.batch.device_id is None and result.batch.meter_id is None
    assert sorted(last_event()["subject"]) == sorted(
        [
            f"reading_batch:{result.batch.pk}",
            f"device:{meter.device_id}",
            f"device:{other.device_id}",
            f"meter:{meter.pk}",
            f"meter:{other.pk}",
        ]
    )
    assert ReadingBatch.objects.count() == 1


def test_one_bad_signature_rolls_back_a_large_valid_batch(producer, meter, key, snapshot):
    # the batch is inserted while signatures are still being verified; the last row's
    # verdict arrives late and must undo everything
    rows = day(meter, key, hours=24 * 30)
    rows[-1]["wh"] += 1
    errors = rejected(producer, rows, snapshot)
    assert errors == [
        {
            "row": len(rows),
            "field": "signature",
            "code": "signature_invalid",
            "message": errors[0]["message"],
        }
    ]


def test_bad_signature_on_a_resent_reading_is_reported_not_skipped(producer, meter, key, snapshot):
    rows = day(meter, key, hours=3)
    submit(producer, rows)
    forged = dict(rows[0], wh=rows[0]["wh"] + 5)
    errors = rejected(producer, [forged], snapshot)
    assert [e["code"] for e in errors] == ["signature_invalid"]
