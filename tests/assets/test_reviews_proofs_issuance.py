"""Held-batch reviews, reading inclusion proofs, and the interface certificates builds on."""

import datetime as dt
import json

import pytest
from django.db import transaction

from accounts.errors import NotIssuingBody
from assets import selectors, services
from assets.errors import ReadingBatchNotHeld, ReadingsAlreadyIssued
from assets.models import PendingReading, Reading, ReadingBatch
from assets.readings_io import iter_mapping_rows
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.models import PendingEvent
from registry.errors import InvalidInput
from tests.assets.factories import MeterFactory, counter_row, hours_ago, interval_row
from tests.conftest import client_for

UTC = dt.UTC


def submit(actor, rows, **kwargs):
    return services.readings_submit(actor=actor, rows=iter_mapping_rows(rows), **kwargs)


def last_event() -> dict:
    return json.loads(bytes(PendingEvent.objects.latest("id").event))


@pytest.fixture
def held(producer, meter, key):
    rows = [interval_row(meter, hours_ago(h), 1000, key=key) for h in range(5, 0, -1)]
    rows[2] = interval_row(meter, hours_ago(3), 500_000, key=key)
    result = submit(producer, rows)
    assert result.status == "held"
    return result.batch


# -- reviews ---------------------------------------------------------------------------------


def test_issuing_body_accepts_a_held_batch(issuer, held, snapshot):
    before = snapshot()
    batch = services.reading_batch_accept(actor=issuer, batch_id=held.pk, reason="Checked: clip")
    assert batch.status == ReadingBatch.Status.ACCEPTED and batch.reviewed_by == issuer
    after = snapshot()
    assert after["Reading"] == before["Reading"] + 5
    assert after["PendingReading"] == before["PendingReading"] - 5
    assert after["ledger_events"] == before["ledger_events"] + 1
    event = last_event()
    assert event["type"] == "reading_batch.accepted"
    assert event["data"]["merkle_root"] == held.merkle_root and event["data"]["reviewed"]
    readings = Reading.objects.filter(batch=held).order_by("index_in_batch")
    assert [r.wh for r in readings] == [1000, 1000, 500_000, 1000, 1000]
    assert all(r.is_signed for r in readings)


def test_issuing_body_rejects_a_held_batch(issuer, held, snapshot):
    before = snapshot()
    services.reading_batch_reject(actor=issuer, batch_id=held.pk, reason="Meter fault")
    after = snapshot()
    assert ReadingBatch.objects.get(pk=held.pk).status == ReadingBatch.Status.REJECTED
    assert after["Reading"] == before["Reading"]
    assert after["PendingReading"] == before["PendingReading"] - 5
    assert after["ledger_events"] == before["ledger_events"] + 1
    assert last_event()["type"] == "reading_batch.rejected"


def test_review_rules(producer, issuer, held, snapshot):
    before = snapshot()
    with pytest.raises(NotIssuingBody):
        services.reading_batch_accept(actor=producer, batch_id=held.pk)
    with pytest.raises(InvalidInput):
        services.reading_batch_reject(actor=issuer, batch_id=held.pk, reason="")
    assert snapshot() == before
    services.reading_batch_accept(actor=issuer, batch_id=held.pk)
    after = snapshot()
    with pytest.raises(ReadingBatchNotHeld):
        services.reading_batch_accept(actor=issuer, batch_id=held.pk)
    with pytest.raises(ReadingBatchNotHeld):
        services.reading_batch_reject(actor=issuer, batch_id=held.pk, reason="late")
    assert snapshot() == after


def test_reviews_over_http(producer, issuer, held):
    url = f"/api/v1/reading-batches/{held.pk}/"
    assert client_for(producer).post(url + "accept/", {}, format="json").status_code == 403
    response = client_for(issuer).post(url + "accept/", {"reason": "ok"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert client_for(issuer).post(url + "accept/", {}, format="json").status_code == 409


def test_held_counter_readings_advance_the_counter(producer, meter, key):
    rows = [
        counter_row(meter, hours_ago(4), 0, key=key),
        counter_row(meter, hours_ago(3), 900_000, key=key),
    ]
    assert submit(producer, rows).status == "held"
    meter.refresh_from_db()
    assert meter.counter_wh == 900_000
    assert submit(producer, [counter_row(meter, hours_ago(2), 901_000, key=key)]).stored == 1


# -- proofs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 13])
def test_every_reading_is_provably_in_its_batch_root(producer, meter, key, size):
    rows = [interval_row(meter, hours_ago(h), 10 * h, key=key) for h in range(size, 0, -1)]
    batch = submit(producer, rows).batch
    for reading in Reading.objects.filter(batch=batch):
        proof = selectors.reading_proof(reading=reading)
        data = proof["canonical"].encode()
        assert json.loads(data) == {
            "meter": meter.serial,
            "start": reading.start.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "end": reading.end.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "wh": reading.wh,
        }
        verify_inclusion(
            leaf_hash(data),
            proof["index"],
            proof["tree_size"],
            [bytes.fromhex(h) for h in proof["proof"]],
            bytes.fromhex(batch.merkle_root),
        )
        assert proof["ledger"]["subject"] == f"reading_batch:{batch.pk}"
        assert proof["ledger"]["pending_event_id"] == batch.ledger_pending_event_id


def test_proof_endpoint(producer, meter, key, auditor):
    rows = [interval_row(meter, hours_ago(h), h, key=key) for h in range(7, 0, -1)]
    batch = submit(producer, rows).batch
    reading = Reading.objects.get(batch=batch, index_in_batch=4)
    response = client_for(auditor).get(f"/api/v1/readings/{reading.pk}/proof/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["index"], body["tree_size"], body["batch_id"]) == (4, 7, batch.pk)
    event = json.loads(bytes(PendingEvent.objects.get(pk=body["ledger"]["pending_event_id"]).event))
    assert event["data"]["merkle_root"] == body["merkle_root"]
    verify_inclusion(
        leaf_hash(body["canonical"].encode()),
        4,
        7,
        [bytes.fromhex(h) for h in body["proof"]],
        bytes.fromhex(body["merkle_root"]),
    )


def test_tampered_reading_cannot_be_proven(producer, meter, key, auditor):
    batch = submit(
        producer, [interval_row(meter, hours_ago(h), h, key=key) for h in (3, 2, 1)]
    ).batch
    reading = Reading.objects.get(batch=batch, index_in_batch=1)
    Reading.objects.filter(pk=reading.pk).update(wh=999)
    response = client_for(auditor).get(f"/api/v1/readings/{reading.pk}/proof/")
    assert response.status_code == 500 and response.json()["code"] == "batch_root_mismatch"


def test_reviewed_batch_proves_against_the_accept_event(producer, issuer, held):
    services.reading_batch_accept(actor=issuer, batch_id=held.pk)
    reading = Reading.objects.get(batch=held, index_in_batch=2)
    proof = selectors.reading_proof(reading=reading)
    event = json.loads(
        bytes(PendingEvent.objects.get(pk=proof["ledger"]["pending_event_id"]).event)
    )
    assert event["type"] == "reading_batch.accepted" and event["data"]["merkle_root"] == (
        held.merkle_root
    )


# -- the certificates interface ---------------------------------------------------------------


def test_readings_for_issuance_and_mark_issued(producer, producer_org, meter, key):
    consumption = MeterFactory(device=meter.device, kind="consumption")
    rows = [interval_row(meter, hours_ago(h), 100 + h, key=key) for h in range(6, 0, -1)]
    rows += [interval_row(consumption, hours_ago(h), 3) for h in range(6, 0, -1)]
    submit(producer, rows)
    start, end = hours_ago(5), hours_ago(2)
    readings = list(
        selectors.readings_for_issuance(device_id=meter.device_id, start=start, end=end)
    )
    assert [r.start for r in readings] == [hours_ago(5), hours_ago(4), hours_ago(3)]
    assert all(r.meter_id == meter.pk for r in readings)
    at = dt.datetime.now(UTC)
    with transaction.atomic():
        assert services.readings_mark_issued(reading_ids=[r.pk for r in readings], at=at) == 3
    left = selectors.readings_for_issuance(device_id=meter.device_id, start=start, end=end)
    assert not left.exists()
    # issuing any of them again refuses everything and marks nothing
    more = Reading.objects.get(meter=meter, start=hours_ago(2))
    with transaction.atomic():
        with pytest.raises(ReadingsAlreadyIssued) as caught:
            services.readings_mark_issued(reading_ids=[more.pk, readings[0].pk], at=at)
        # the refusal left the caller's transaction usable and marked nothing
        assert Reading.objects.get(pk=more.pk).issued_at is None
    assert caught.value.status == 409
    with transaction.atomic(), pytest.raises(ReadingsAlreadyIssued):
        services.readings_mark_issued(reading_ids=[10**9], at=at)


def test_mark_issued_needs_the_callers_transaction():
    with pytest.raises(RuntimeError):
        services.readings_mark_issued(reading_ids=[1], at=dt.datetime.now(UTC))


def test_device_owners_selector(device):
    owners = selectors.device_owners(device_id=device.pk)
    assert len(owners) == 1 and owners[0].share == 1 and owners[0].account.is_open
    assert PendingReading.objects.count() == 0


def test_accepted_batches_reach_the_registered_hooks(producer, issuer, meter, key, monkeypatch):
    seen = []
    monkeypatch.setattr(services, "READINGS_ACCEPTED_HOOKS", [lambda batch: seen.append(batch.pk)])
    direct = submit(producer, [interval_row(meter, hours_ago(9), 5, key=key)]).batch
    held = submit(producer, [interval_row(meter, hours_ago(8), 10**7, key=key)]).batch
    assert seen == [direct.pk]
    services.reading_batch_accept(actor=issuer, batch_id=held.pk)
    assert seen == [direct.pk, held.pk]
