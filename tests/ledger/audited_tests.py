"""Which tests run under the subject audit in every session, and what they caused.

The service tests of every app run with every `transaction.atomic` block audited
(tests/ledger/subject_audit.py, through the `_subject_audit` fixture of tests/conftest.py),
in the same session as the rest of the suite rather than a second run of their own; the
catalogue check (tests/ledger/test_event_subjects.py) runs last and compares the event
kinds they caused with ledger/EVENTS.md. Plain data: conftest imports it before Django
has loaded any app.
"""

SERVICE_TESTS = (
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
)
"""Between them they cause every kind of event: a file, or one test in it."""

CAUSED_KINDS: set[str] = set()
"""The event kinds the audited tests of this session caused (filled by the fixture)."""


def _belongs(nodeid: str, entry: str) -> bool:
    return nodeid == entry or nodeid.startswith((entry + "::", entry + "["))


def is_audited(nodeid: str) -> bool:
    """Whether the test with this pytest node id is one of `SERVICE_TESTS`."""
    return any(_belongs(nodeid, entry) for entry in SERVICE_TESTS)


def entries_not_in(nodeids: list[str]) -> list[str]:
    """The `SERVICE_TESTS` entries none of these node ids belongs to."""
    return [
        entry for entry in SERVICE_TESTS if not any(_belongs(nodeid, entry) for nodeid in nodeids)
    ]
