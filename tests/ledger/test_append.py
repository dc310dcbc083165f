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
