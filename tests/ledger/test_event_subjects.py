"""Every ledger event names every object its write changed (subject_audit.py)."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.db import transaction

from ledger.services import ledger_append
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

SERVICE_TESTS = [
    "tests/accounts/test_services_accounts.py",
    "tests/accounts/test_services_organisations.py",
    "tests/accounts/test_services_users.py",
    "tests/assets/test_devices.py",
    "tests/assets/test_grid_areas.py",
    "tests/assets/test_meters.py",
    "tests/assets/test_readings.py",
    "tests/assets/test_reviews_proofs_issuance.py",
    "tests/certificates/test_issuance.py",
    "tests/certificates/test_transfer.py",
    "tests/certificates/test_cut.py",
    "tests/certificates/test_retirement.py",
    "tests/certificates/test_expiry_withdrawal.py",
    "tests/certificates/test_withdrawal_by_device.py",
    "tests/certificates/test_crossregistry.py",
    "tests/market/test_money.py",
    "tests/market/test_orders.py",
    "tests/market/test_payments.py",
    "tests/market/test_pay_now.py",
    "tests/market/test_slots.py",
    "tests/market/test_delivery.py",
    "tests/market/test_delivery_certificates.py",
    "tests/market/test_delivery_pending.py",
    "tests/market/test_retire_on_delivery.py",
    "tests/market/test_self_trade.py",
    "tests/market/test_agents.py",
    "tests/consumers/test_households_and_sites.py",
    "tests/consumers/test_consents.py",
    "tests/consumers/test_communities.py",
    "tests/consumers/test_distribution.py",
    "tests/consumers/test_retirement_by_consumption.py",
    "tests/contracts/test_agreements.py",
    "tests/contracts/test_execution.py",
    "tests/contracts/test_storage.py",
    "tests/contracts/test_community_sharing.py",
    "tests/charging/test_tariffs.py",
    "tests/charging/test_sessions.py",
    "tests/charging/test_receipts.py",
    "tests/notifications/test_webhooks.py",
    "tests/federation/test_peers.py",
    "tests/federation/test_replication.py",
    "tests/ledger/test_key_rotation.py::test_a_new_log_rotates_before_its_first_entry",
    # the demo data: the market's creation has no service test of its own
    "tests/ledger/test_event_subjects.py::test_demo_data_events_name_what_they_change",
]
"""The service tests of every app: between them they cause every kind of event."""


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


@pytest.mark.skipif(
    bool(os.environ.get("SUBJECT_AUDIT")), reason="already running under the subject audit"
)
@pytest.mark.timeout(1200)  # every app's service tests in a subprocess: ~2-5 min, more under load
def test_every_event_kind_names_every_object_it_changes(tmp_path):
    # given the service tests of every app, run under the subject audit
    kinds_file = tmp_path / "kinds.txt"
    env = os.environ | {"SUBJECT_AUDIT": "1", "SUBJECT_AUDIT_KINDS": str(kinds_file)}
    if env.get("DATABASE_URL", "").startswith("postgres"):
        # its own test database: this session's is in use (pytest-django would drop it)
        url = urlsplit(env["DATABASE_URL"])
        env["DATABASE_URL"] = urlunsplit(url._replace(path=url.path + "_subject_audit"))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    command.append("--create-db")

    # when
    run = subprocess.run(
        [*command, *SERVICE_TESTS],
        cwd=EVENTS_MD.parents[1],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    # then no write left out an object it changed, and every catalogued kind was caused
    assert run.returncode == 0, run.stdout[-20000:]
    caused = set(kinds_file.read_text().split())
    assert catalogue_kinds() - caused == set()
    assert caused - catalogue_kinds() == set()  # a kind missing from ledger/EVENTS.md


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
