"""Every ledger event names every object its write changed (subject_audit.py)."""

import io

import pytest
from django.core.management import call_command

from tests.ledger.subject_audit import SubjectAudit, replay_gaps

pytestmark = pytest.mark.django_db


def report(audit: SubjectAudit) -> str:
    return "\n".join(str(gap) for gap in audit.gaps)


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
