"""verify_ledger recomputes everything and names the first row that was tampered with."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ledger.integrity import LedgerTampered, ledger_verify
from ledger.models import Checkpoint, LedgerEntry, TreeHead, TreeNode
from ledger.services import checkpoint_create
from ledger.storage import node_id
from tests.ledger.factories import (
    append_events,
    flip_byte,
    integrate_all,
    ledger_with,
    triggers_lifted,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger():
    ledger_with(10)
    checkpoint_create()
    append_events(7, start=10)
    integrate_all()
    checkpoint_create()


def test_an_untouched_ledger_verifies(ledger):
    # when
    report = ledger_verify(chunk_size=4)

    # then
    assert (report.entries, report.nodes, report.checkpoints) == (17, 2 * 17 - 2, 2)
    assert report.event_bytes == sum(
        len(bytes(e)) for e in LedgerEntry.objects.values_list("event", flat=True)
    )


def test_the_command_reports_success_and_progress(ledger):
    out, err = io.StringIO(), io.StringIO()
    call_command("verify_ledger", "--chunk-size", "5", stdout=out, stderr=err)
    assert "Ledger OK: 17 entries, 32 tree nodes, 2 checkpoints" in out.getvalue()
    assert "17/17 entries" in err.getvalue()


def _tamper_entry(column: str, seq: int, index: int = 0) -> None:
    value = bytes(getattr(LedgerEntry.objects.get(seq=seq), column))
    with triggers_lifted() as cursor:
        cursor.execute(
            f"UPDATE ledger_ledgerentry SET {column} = %s WHERE seq = %s",  # noqa: S608
            [flip_byte(value, index), seq],
        )


def _tamper_node(level: int, index: int) -> None:
    key = node_id(level, index)
    value = bytes(TreeNode.objects.get(id=key).hash)
    with triggers_lifted() as cursor:
        cursor.execute(
            "UPDATE ledger_treenode SET hash = %s WHERE id = %s", [flip_byte(value), key]
        )


def _tamper_checkpoint(size: int) -> None:
    note = Checkpoint.objects.get(size=size).note
    lines = note.split("\n")
    lines[2] = lines[2][:5] + ("A" if lines[2][5] != "A" else "B") + lines[2][6:]  # the root
    with triggers_lifted() as cursor:
        cursor.execute(
            "UPDATE ledger_checkpoint SET note = %s WHERE size = %s", ["\n".join(lines), size]
        )


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda: _tamper_entry("event", 6, index=30), "entry 6: event bytes were altered"),
        (lambda: _tamper_entry("leaf_hash", 4), "entry 4: leaf hash was altered"),
        (lambda: _tamper_entry("chain", 13, index=31), "entry 13: chain hash was altered"),
        (lambda: _tamper_node(2, 1), "node (2, 1): stored hash differs"),
        (lambda: _tamper_node(0, 16), "node (0, 16): stored hash differs"),
        (lambda: _tamper_checkpoint(10), "checkpoint at size 10: signed note does not verify"),
    ],
    ids=["event", "leaf-hash", "chain", "interior-node", "leaf-node", "checkpoint-note"],
)
def test_one_changed_byte_is_caught_and_named(ledger, tamper, message):
    # given
    tamper()

    # when / then
    with pytest.raises(LedgerTampered, match=message.replace("(", r"\(").replace(")", r"\)")):
        ledger_verify(chunk_size=4)
    with pytest.raises(CommandError, match="LEDGER VERIFICATION FAILED"):
        call_command("verify_ledger", "--no-progress", stdout=io.StringIO())


def test_a_deleted_entry_is_caught(ledger):
    # given
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM ledger_entrysubject WHERE seq = 8")
        cursor.execute("DELETE FROM ledger_ledgerentry WHERE seq = 8")

    # when / then
    with pytest.raises(LedgerTampered, match="entry 8: missing"):
        ledger_verify()


def test_a_deleted_node_is_caught(ledger):
    # given
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM ledger_treenode WHERE id = %s", [node_id(1, 2)])

    # when / then
    with pytest.raises(LedgerTampered, match=r"node \(1, 2\): missing"):
        ledger_verify()


def test_rows_added_beyond_the_tree_are_caught(ledger):
    # given: inserts pass the triggers; the integrator never wrote these
    TreeNode.objects.create(id=1000, hash=bytes(32))

    # when / then
    with pytest.raises(LedgerTampered, match=r"node \(\d+, \d+\): stored beyond the tree"):
        ledger_verify()


def test_a_head_that_disagrees_with_the_entries_is_caught(ledger):
    # given
    TreeHead.objects.update(size=16)

    # when / then
    with pytest.raises(LedgerTampered, match="tree head: size 16, but 17 entries"):
        ledger_verify()
