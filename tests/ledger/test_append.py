"""ledger_append: one canonical event in the caller's transaction, or none at all."""

import json

import pytest
from django.db import transaction

from ledger.canonical import EventEncodingError
from ledger.errors import LedgerAppendOutsideTransaction
from ledger.models import LedgerEntry, PendingEvent
from ledger.services import ledger_append


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused(ledger_pending_count):
    # when / then
    with pytest.raises(LedgerAppendOutsideTransaction):
        ledger_append(kind="test.happened", actor="system:test", subject=None, data={})
    assert ledger_pending_count() == 0


@pytest.mark.django_db(transaction=True)
def test_append_rolls_back_with_its_caller(ledger_pending_count):
    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        ledger_append(kind="test.happened", actor="system:test", subject=None, data={})
        raise RuntimeError("the domain change failed")

    # then
    assert ledger_pending_count() == 0
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_append_queues_the_canonical_envelope(ledger_pending_count):
    # when
    with transaction.atomic():
        pending = ledger_append(
            kind="bundle.split",
            actor="system:test",
            subject=[("bundle", 12), ("bundle", 13)],
            data={"volume_wh": 1500, "share": "0.25"},
        )

    # then
    assert ledger_pending_count() == 1
    raw = bytes(PendingEvent.objects.get().event)
    assert raw == (
        b'{"actor":"system:test","at":"'
        + pending.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        + b'","data":{"share":"0.25","volume_wh":1500},"subject":["bundle:12","bundle:13"],'
        b'"type":"bundle.split"}'
    )
    assert json.loads(raw)["subject"] == pending.subjects == ["bundle:12", "bundle:13"]


@pytest.mark.django_db
def test_floats_are_refused_and_nothing_is_queued(ledger_pending_count):
    # when / then
    with pytest.raises(EventEncodingError), transaction.atomic():
        ledger_append(kind="test.happened", actor="system:test", subject=None, data={"x": 0.1})
    assert ledger_pending_count() == 0


@pytest.mark.django_db
def test_append_many_queues_what_appends_one_by_one_would_in_order(ledger_pending_count):
    # given: 600 events, more than one multi-row INSERT holds
    from ledger import storage
    from ledger.services import ledger_append_many

    events = [([("bundle", i)], {"n": i}) for i in range(storage.PENDING_ROWS + 100)]
    # when
    with transaction.atomic():
        ids = ledger_append_many(kind="bundle.split", actor="system:test", events=events)
        one = ledger_append(
            kind="bundle.split", actor="system:test", subject=[("bundle", 9)], data={"n": 9}
        )

    # then: one pending event each, numbered in the order given, in the envelope of one append
    assert ledger_pending_count() == len(events) + 1
    rows = list(PendingEvent.objects.filter(pk__in=ids).order_by("pk"))
    assert [row.pk for row in rows] == ids
    decoded = [json.loads(bytes(row.event)) for row in rows]
    assert [e["data"]["n"] for e in decoded] == list(range(len(events)))
    assert [row.subjects for row in rows[:2]] == [["bundle:0"], ["bundle:1"]]
    single = json.loads(bytes(PendingEvent.objects.get(pk=one.pk).event))
    assert decoded[9].keys() == single.keys()
    assert {k: v for k, v in decoded[9].items() if k != "at"} == {
        k: v for k, v in single.items() if k != "at"
    }


@pytest.mark.django_db(transaction=True)
def test_append_many_outside_a_transaction_is_refused(ledger_pending_count):
    from ledger.services import ledger_append_many

    with pytest.raises(LedgerAppendOutsideTransaction):
        ledger_append_many(kind="test.happened", actor="system:test", events=[(None, {})])
    assert ledger_pending_count() == 0
