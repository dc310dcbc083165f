"""What an OCPP TransactionEvent or an OCMF record may carry, found by hand after fuzzing
(2026-12-07): a seqNo beyond the sequence columns, NUL or a lone surrogate in a text, and
an OCMF payload nested past the JSON parser were 500s; a session spanning years made
billing build an hour per clock hour (4 s for ten years, gigabytes for 8,000), and many
samples made each hour's reading scan every sample."""

import datetime as dt
import random

import pytest

from charging import errors, messages, services, tariffs
from charging.services.sessions import MAX_SESSION
from tests.charging.factories import DAY, charging_world, ocmf_key, ocmf_record, tx_event

START = DAY + dt.timedelta(hours=9)


@pytest.mark.parametrize("seq_no", [2**31, 10**30, -1])
def test_a_seq_no_outside_the_columns_is_refused(seq_no):
    with pytest.raises(errors.InvalidTransactionEvent) as refused:
        messages.transaction_event_parse(tx_event("Started", seq_no, START, 1000))
    assert "seqNo" in refused.value.extra["fields"]
    assert messages.transaction_event_parse(tx_event("Started", 2**31 - 1, START, 1000))


@pytest.mark.parametrize(
    ("where", "text"),
    [("transactionId", "nul\x00x"), ("transactionId", "\ud800X"), ("idToken", "a\x00b")],
)
def test_a_text_with_nul_or_a_lone_surrogate_is_refused(where, text):
    message = tx_event("Started", 0, START, 1000)
    if where == "transactionId":
        message["transactionInfo"]["transactionId"] = text
    else:
        message["idToken"]["idToken"] = text
    with pytest.raises(errors.InvalidTransactionEvent):
        messages.transaction_event_parse(message)


def test_custom_data_the_registry_does_not_read_may_hold_any_text():
    """CI's fuzzing (seed 1) put a NUL inside customData, which the schema leaves open:
    only the texts the registry stores or looks up are refused."""
    message = tx_event("Started", 0, START, 1000)
    message["customData"] = {"vendorId": "v", "note": ["a\x00b"]}
    assert messages.transaction_event_parse(message).transaction_id == "TX-1"


def test_the_schema_states_the_seq_no_range_and_no_nul():
    schema = messages.transaction_event_openapi_schema()
    assert {"minimum": 0, "maximum": 2**31 - 1}.items() <= schema["properties"]["seqNo"].items()
    transaction_id = schema["properties"]["transactionInfo"]["properties"]["transactionId"]
    id_token = schema["properties"]["idToken"]["properties"]["idToken"]
    assert transaction_id["pattern"] == id_token["pattern"] == messages.NO_NUL


def test_an_ocmf_payload_nested_too_deep_is_unreadable_not_a_500():
    _private, public = ocmf_key()
    with pytest.raises(errors.OcmfUnsigned):
        messages.ocmf_verify("OCMF|" + "[" * 1000 + "|{}", public_key=public)


@pytest.mark.django_db
@pytest.mark.parametrize(("days", "billed"), [(30, True), (32, False)])
def test_a_session_lasts_at_most_31_days(days, billed):
    world = charging_world()
    record = lambda message: services.transaction_event_record(  # noqa: E731
        actor=world.operator, station_id=world.station.pk, message=message
    )
    record(tx_event("Started", 0, START, 1000))
    ended = tx_event("Ended", 1, START + dt.timedelta(days=days), 9000)
    if billed:
        assert record(ended).bill.energy_wh == 8000
    else:
        with pytest.raises(errors.SessionTooLong):
            record(ended)
    assert dt.timedelta(days=31) == MAX_SESSION


@pytest.mark.django_db
def test_an_ocmf_record_spanning_more_than_31_days_is_refused():
    world = charging_world()
    record = ocmf_record(
        world.ocmf_private, begin=(START, "1.0"), end=(START + dt.timedelta(days=40), "2.0")
    )
    with pytest.raises(errors.SessionTooLong):
        services.ocmf_session_record(
            actor=world.operator, station_id=world.station.pk, record=record
        )


def _readings_by_scanning(samples, moments):
    """The meter reading at each moment as it was computed before: found by scanning
    every pair of samples (quadratic, kept here as the reference)."""
    from fractions import Fraction
    from itertools import pairwise

    def reading_at(t):
        for (t0, w0), (t1, w1) in pairwise(samples):
            if t0 <= t <= t1:
                if t1 == t0:
                    return w1
                span = Fraction((t1 - t0).total_seconds())
                return w0 + int((w1 - w0) * Fraction((t - t0).total_seconds()) / span)
        return samples[-1][1]

    return [reading_at(t) for t in moments]


@pytest.mark.parametrize("seed", range(5))
def test_one_pass_hourly_split_equals_the_scan(seed):
    rng = random.Random(seed)
    at, wh, samples = START + dt.timedelta(minutes=rng.randrange(60)), 0, []
    for _ in range(rng.randrange(2, 80)):
        samples.append((at, wh))
        at += dt.timedelta(minutes=rng.choice([0, 1, 7, 45, 130]))  # repeats and gaps
        wh += rng.randrange(0, 5000)
    periods = tariffs.hourly_periods(samples)
    readings = [samples[0][1]]
    for period in periods:
        readings.append(readings[-1] + period.energy_wh)
    moments = [period.start for period in periods[1:]]  # the clock hours within
    assert all(m.minute == m.second == m.microsecond == 0 for m in moments)
    assert readings[1:-1] == _readings_by_scanning(samples, moments)
    assert sum(p.energy_wh for p in periods) == samples[-1][1] - samples[0][1]
