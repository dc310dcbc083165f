"""ledger.subjects: subject kinds, and subjects_v1 (the index map of old entries)."""

import pytest

from ledger.subjects import SUBJECT_KINDS, subject_kind_known, subjects_v1


def issued(listed: list[str]) -> tuple[str, dict, list[str]]:
    """An old certificate.issued entry: two periods, two owners each."""
    periods = [
        [
            "2025-01-01T10:00:00Z",
            "2025-01-01T11:00:00Z",
            0,
            900,
            [[11, 3, 0, 600], [12, 4, 600, 900]],
        ],
        [
            "2025-01-01T11:00:00Z",
            "2025-01-01T12:00:00Z",
            900,
            1500,
            [[13, 3, 900, 1300], [14, 4, 1300, 1500]],
        ],
    ]
    return "certificate.issued", {"issuance": {"issuance_id": 5, "periods": periods}}, listed


def test_an_old_issuance_is_filed_under_every_bundle_and_account_it_created():
    kind, data, listed = issued(["device:2", "issuance:5"])
    assert subjects_v1(kind, data, listed) == [
        "device:2",
        "issuance:5",
        "bundle:11",
        "account:3",
        "bundle:12",
        "account:4",
        "bundle:13",
        "bundle:14",
    ]


def test_a_complete_list_is_kept_as_it_is():
    # given a new entry that already names everything, in its own order
    kind, data, _ = issued([])
    listed = ["device:2", "issuance:5", "bundle:11", "bundle:12", "bundle:13", "bundle:14"]
    listed += ["account:3", "account:4"]

    # then the index files it under exactly those subjects, in that order
    assert subjects_v1(kind, data, listed) == listed


@pytest.mark.parametrize(
    ("kind", "data", "listed", "added"),
    [
        (
            "certificate.transferred",
            {
                "transfer_id": 7,
                "bundle_id": 11,
                "moved_bundle_id": 20,
                "rest_bundle_id": 21,
                "from_account_id": 3,
                "to_account_id": 9,
            },
            ["bundle:11", "transfer:7"],
            ["bundle:20", "bundle:21", "account:3", "account:9"],
        ),
        (
            "certificate.batch_transferred",
            {
                "to_account_id": 9,
                "transfers": [
                    {
                        "transfer_id": 7,
                        "bundle_id": 11,
                        "moved_bundle_id": 11,
                        "rest_bundle_id": None,
                        "from_account_id": 3,
                        "to_account_id": 9,
                    },
                ],
            },
            [],
            ["account:9", "bundle:11", "account:3", "transfer:7"],
        ),
        (
            "certificate.retired",
            {
                "account_id": 3,
                "items": [{"bundle_id": 11, "moved_bundle_id": 30, "rest_bundle_id": 31}],
            },
            ["retirement:4"],
            ["account:3", "bundle:11", "bundle:30", "bundle:31"],
        ),
        (
            "certificate.withdrawn",
            {
                "withdrawn_bundle_ids": [11],
                "flagged_bundle_ids": [12],
                "cancelled_transfer_ids": [7],
            },
            ["withdrawal:1", "bundle:11", "bundle:12"],
            ["transfer:7"],
        ),
        ("certificate.expired", {"bundle_ids": [11, 12]}, ["bundle:11"], ["bundle:12"]),
        ("device.updated", {"device_id": 2}, ["device:2"], []),
    ],
)
def test_rules_of_version_1(kind, data, listed, added):
    assert subjects_v1(kind, data, listed) == [*listed, *added]


@pytest.mark.parametrize(
    "data",
    [
        {"issuance": "not an object"},
        {"issuance": {"periods": [["short"], None, [1, 2, 3, 4, "not a list"]]}},
        {"issuance": {"periods": [[1, 2, 3, 4, [[True, "3"], ["x"], None]]]}},
        "not an object",
    ],
)
def test_malformed_old_data_adds_nothing_and_raises_nothing(data):
    assert subjects_v1("certificate.issued", data, ["device:2"]) == ["device:2"]


def test_subject_kinds():
    assert subject_kind_known("bundle") and subject_kind_known("charging_session")
    assert not subject_kind_known("nonsense") and not subject_kind_known("")
    assert all(kind == kind.lower() and ":" not in kind for kind in SUBJECT_KINDS)
