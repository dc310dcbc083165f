"""Every ledger event names every object its write changed (subject_audit.py)."""

import io
import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from ledger.services import ledger_append
from tests.ledger.audited_tests import CAUSED_KINDS, entries_not_in
from tests.ledger.subject_audit import SubjectAudit, replay_gaps

pytestmark = pytest.mark.django_db


def report(audit: SubjectAudit) -> str:
    return "\n".join(str(gap) for gap in audit.gaps)


@pytest.mark.subject_index  # the demo's checkpoint commits the subject map, as in production
def test_demo_data_events_name_what_they_change():
    # given
    audit = SubjectAudit()

    # when
    with audit.watching():
        call_command("seed_demo", stdout=io.StringIO())

    # then
    print(sorted(audit.kinds), audit.transactions)
    assert not audit.unknown_kinds
    assert not audit.gaps, report(audit)
    assert replay_gaps() == []


# ---------------------------------------------------------------- every kind in the catalogue

EVENTS_MD = Path(__file__).resolve().parents[2] / "ledger" / "EVENTS.md"


def catalogue_kinds() -> set[str]:
    """Every event kind ledger/EVENTS.md lists (first column of its tables)."""
    kinds: set[str] = set()
    for line in EVENTS_MD.read_text().splitlines():
        if line.startswith("| `"):
            kinds.update(re.findall(r"`([a-z_]+\.[a-z_]+)`", line.split("|")[1]))
    return kinds


def test_the_catalogue_is_read():
    kinds = catalogue_kinds()
    assert {"certificate.issued", "order.placed", "webhook_endpoint.deleted"} <= kinds
    assert len(kinds) > 90


@pytest.mark.last  # after the audited service tests (tests/conftest.py orders it)
def test_every_event_kind_is_caused_by_the_audited_service_tests(request):
    # given this session ran every service test of every app under the subject audit
    # (tests/ledger/audited_tests.py), each of which failed on an event missing a subject
    if os.environ.get("SUBJECT_AUDIT") == "0":
        pytest.skip("SUBJECT_AUDIT=0: no test ran under the subject audit")
    missing = entries_not_in([item.nodeid for item in request.session.items])
    if missing:
        pytest.skip(f"needs every audited service test; {len(missing)} not in this session")

    # then together they caused every catalogued kind, and no kind the catalogue lacks
    assert catalogue_kinds() - CAUSED_KINDS == set()
    assert CAUSED_KINDS - catalogue_kinds() == set()  # a kind missing from ledger/EVENTS.md


def test_the_replay_finds_an_event_that_changes_a_bundle_it_does_not_name():
    # given an issuance of bundle 7 to account 3 whose event names only the device
    issuance = {
        "issuance_id": 1,
        "device_id": 2,
        "unit_start": 0,
        "unit_end": 100,
        "periods": [["2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", 0, 100, [[7, 3, 0, 100]]]],
    }
    with transaction.atomic():
        pending = ledger_append(
            kind="certificate.issued",
            actor="system:test",
            subject=[("device", 2), ("issuance", 1), ("bundle", 7)],
            data={"issuance": issuance},
        )

    # when / then
    assert replay_gaps() == [
        f"queued event {pending.pk} (certificate.issued) changes account:3 without naming it"
    ]
