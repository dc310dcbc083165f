"""Entries, subject rows, nodes and checkpoints cannot be changed or deleted in the database."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from ledger.models import Checkpoint, EntrySubject, LedgerEntry, PendingEvent, TreeHead, TreeNode
from ledger.services import checkpoint_create
from tests.ledger.factories import ledger_with

pytestmark = pytest.mark.django_db

STATEMENTS = [
    ("ledger_ledgerentry", "UPDATE ledger_ledgerentry SET kind = 'forged' WHERE seq = 1"),
    ("ledger_ledgerentry", "DELETE FROM ledger_ledgerentry WHERE seq = 2"),
    ("ledger_entrysubject", "UPDATE ledger_entrysubject SET key = 'thing:9' WHERE seq = 1"),
    ("ledger_entrysubject", "DELETE FROM ledger_entrysubject"),
    ("ledger_treenode", "UPDATE ledger_treenode SET hash = hash WHERE id = 0"),
    ("ledger_treenode", "DELETE FROM ledger_treenode WHERE id = 1"),
    ("ledger_checkpoint", "UPDATE ledger_checkpoint SET note = 'forged'"),
    ("ledger_checkpoint", "DELETE FROM ledger_checkpoint"),
]


@pytest.fixture
def ledger():
    ledger_with(4)
    checkpoint_create()


@pytest.mark.parametrize(("table", "sql"), STATEMENTS, ids=[s for _, s in STATEMENTS])
def test_append_only_tables_refuse_update_and_delete(ledger, table, sql):
    # when / then
    with (
        pytest.raises(IntegrityError, match=f"{table} is append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert LedgerEntry.objects.count() == 4
    assert TreeNode.objects.count() == 7
    assert EntrySubject.objects.count() == 4
    assert Checkpoint.objects.get().note.startswith("gridproof")


def test_the_integrator_may_still_move_the_head_and_empty_the_queue(ledger):
    # when
    TreeHead.objects.update(size=4)
    PendingEvent.objects.all().delete()

    # then
    assert TreeHead.objects.get().size == 4


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_ledger_and_keeps_the_triggers():
    # given
    ledger_with(3)

    # when
    call_command("flush", interactive=False, verbosity=0)

    # then
    assert not LedgerEntry.objects.exists()
    ledger_with(2)
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM ledger_ledgerentry")
