"""The integrator: numbering without gaps, hashes, chain, nodes, head, batching, kicks."""

import hashlib
import json
import threading
import time
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from ledger import kick as kick_module
from ledger import services, storage
from ledger.errors import LedgerCorrupted
from ledger.integrity import ledger_verify
from ledger.kick import kick, kick_flag
from ledger.merkle import CompactRange, leaf_hash, root_from_leaf_hashes
from ledger.models import EntrySubject, LedgerEntry, PendingEvent, TreeHead, TreeNode
from ledger.services import ledger_integrate
from ledger.storage import ZERO_CHAIN, node_id, node_key
from ledger.tasks import ledger_integrate_task
from tests.conftest import requires_postgres
from tests.ledger.factories import append_events, ledger_with

pytestmark = pytest.mark.django_db


def test_entries_are_numbered_from_zero_without_gaps_in_queue_order():
    # given
    pending = append_events(7)

    # when
    integrated = ledger_integrate()

    # then
    assert integrated == 7
    entries = list(LedgerEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == list(range(7))
    assert [e.pending_id for e in entries] == [p.pk for p in pending]
    assert [bytes(e.event) for e in entries] == [bytes(p.event) for p in pending]
    assert not PendingEvent.objects.exists()


def test_batches_continue_the_numbering_and_the_tree():
    # given
    append_events(11)

    # when
    done = [ledger_integrate(max_batch=4) for _ in range(4)]

    # then
    assert done == [4, 4, 3, 0]
    leaves = [bytes(h) for h in LedgerEntry.objects.values_list("leaf_hash", flat=True)]
    head = TreeHead.objects.get()
    assert head.size == 11
    assert bytes(head.root) == root_from_leaf_hashes(leaves)
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == list(range(11))


def test_integrating_again_changes_nothing():
    # given
    ledger_with(5)
    before = (
        LedgerEntry.objects.count(),
        TreeNode.objects.count(),
        bytes(TreeHead.objects.get().root),
    )

    # when
    again = ledger_integrate()

    # then
    assert again == 0
    after = (
        LedgerEntry.objects.count(),
        TreeNode.objects.count(),
        bytes(TreeHead.objects.get().root),
    )
    assert after == before


def test_leaf_hash_chain_and_head_follow_the_definitions():
    # given
    ledger_with(6)

    # then
    chain = ZERO_CHAIN
    for entry in LedgerEntry.objects.order_by("seq"):
        event = bytes(entry.event)
        assert bytes(entry.leaf_hash) == hashlib.sha256(b"\x00" + event).digest()
        chain = hashlib.sha256(chain + bytes(entry.leaf_hash)).digest()
        assert bytes(entry.chain) == chain
    assert bytes(TreeHead.objects.get().chain) == chain


def test_every_complete_subtree_is_stored_once_under_its_completion_order_key():
    # given
    leaves = ledger_with(13)

    # then
    expected = CompactRange().extend(leaves)
    stored = [(n.id, bytes(n.hash)) for n in TreeNode.objects.order_by("id")]
    assert stored == [(node_id(level, index), h) for level, index, h in expected]
    assert [n for n, _ in stored] == list(range(2 * 13 - (13).bit_count()))
    assert [node_key(n) for n, _ in stored] == [(lv, ix) for lv, ix, _ in expected]


def test_event_time_and_subjects_are_indexed():
    # given
    pending = append_events(1, subject=[("bundle", 12), ("account", 3)])[0]

    # when
    ledger_integrate()

    # then
    entry = LedgerEntry.objects.get()
    event = json.loads(bytes(entry.event))
    assert entry.event_at == pending.created_at
    assert event["at"] == entry.event_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    keys = sorted(EntrySubject.objects.filter(entry=entry).values_list("key", flat=True))
    assert keys == ["account:3", "bundle:12"]


def test_integrator_refuses_to_extend_a_tree_whose_head_disagrees_with_its_nodes():
    # given
    ledger_with(3)
    TreeHead.objects.update(root=bytes(32))
    append_events(1)

    # when / then
    with pytest.raises(LedgerCorrupted):
        ledger_integrate()
    assert LedgerEntry.objects.count() == 3
    assert PendingEvent.objects.count() == 1


@pytest.mark.parametrize("sizes", [[1, 1, 1, 1, 1], [3, 5, 8], [16, 1, 15], [70, 3]])
def test_the_root_does_not_depend_on_how_events_were_batched(sizes):
    # given
    for batch in sizes:
        append_events(batch)
        ledger_integrate(max_batch=batch)

    # then
    leaves = [leaf_hash(bytes(e)) for e in LedgerEntry.objects.values_list("event", flat=True)]
    assert bytes(TreeHead.objects.get().root) == root_from_leaf_hashes(leaves)


def _root_of_entries() -> bytes:
    leaves = [
        bytes(h) for h in LedgerEntry.objects.order_by("seq").values_list("leaf_hash", flat=True)
    ]
    return root_from_leaf_hashes(leaves)


def test_a_loop_resumes_the_tree_from_its_cache_without_reading_nodes():
    # given
    cache = services.TreeCache()
    append_events(3)
    ledger_integrate(cache=cache)
    append_events(2, start=3)

    # when
    with CaptureQueriesContext(connection) as queries:
        ledger_integrate(cache=cache)

    # then
    assert not [q for q in queries if q["sql"].startswith("SELECT id, hash FROM ledger_treenode")]
    assert bytes(TreeHead.objects.get().root) == _root_of_entries()


def test_a_stale_cache_is_not_used_when_another_integrator_moved_the_head():
    # given: this loop's cache is at size 3, then another integrator numbers 2 more
    cache = services.TreeCache()
    append_events(3)
    ledger_integrate(cache=cache)
    append_events(2, start=3)
    ledger_integrate()
    append_events(4, start=5)

    # when
    ledger_integrate(cache=cache)

    # then
    head = TreeHead.objects.get()
    assert head.size == 9
    assert bytes(head.root) == _root_of_entries()


def test_a_batch_that_rolled_back_leaves_the_cache_unused():
    # given: a batch integrated with the cache, then rolled back
    cache = services.TreeCache()
    ledger_with(2)
    append_events(3, start=2)
    with transaction.atomic():
        ledger_integrate(cache=cache)
        transaction.set_rollback(True)

    # when: the same events and one more are numbered again
    append_events(1, start=5)
    ledger_integrate(cache=cache)

    # then
    head = TreeHead.objects.get()
    assert head.size == 6
    assert bytes(head.root) == _root_of_entries()
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == list(range(6))


def test_a_cache_does_not_hide_a_head_that_disagrees_with_its_nodes():
    # given
    cache = services.TreeCache()
    append_events(3)
    ledger_integrate(cache=cache)
    TreeHead.objects.update(root=bytes(32))
    append_events(1, start=3)

    # when / then
    with pytest.raises(LedgerCorrupted):
        ledger_integrate(cache=cache)


@pytest.fixture
def no_integration_on_commit():
    """Commits only queue: without a broker, a commit would integrate right away."""
    with mock.patch.object(services, "kick"):
        yield


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_integration_on_commit")
def test_a_loop_batch_outside_a_transaction_takes_two_round_trips():
    # given
    cache = services.TreeCache()
    ledger_with(3)
    append_events(10 + storage.SMALL_BATCH + 1, start=3)
    first = ledger_integrate(max_batch=5, cache=cache)  # the loop's first reads the nodes

    # when: a small batch (INSERTs), then one too large for them (COPY)
    with CaptureQueriesContext(connection) as queries:
        small = ledger_integrate(max_batch=5, cache=cache)
    large = ledger_integrate(cache=cache)

    # then
    assert (first, small, large) == (5, 5, storage.SMALL_BATCH + 1)
    assert len(queries) == 2
    assert queries[0]["sql"].startswith("BEGIN;")
    assert queries[1]["sql"].endswith("COMMIT")
    head = TreeHead.objects.get()
    assert head.size == 3 + 10 + storage.SMALL_BATCH + 1
    assert bytes(head.root) == _root_of_entries()
    assert not PendingEvent.objects.exists()
    ledger_verify()


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_integration_on_commit")
def test_a_loop_batch_creates_the_head_of_a_new_database():
    # given
    TreeHead.objects.all().delete()
    append_events(2)

    # when
    done = ledger_integrate(cache=services.TreeCache())

    # then
    assert done == 2
    assert TreeHead.objects.get().size == 2
    ledger_verify()


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_integration_on_commit")
def test_a_loop_batch_that_fails_rolls_back_and_leaves_the_connection_usable():
    # given
    cache = services.TreeCache()
    ledger_with(2)
    append_events(3, start=2)

    # when
    with (
        mock.patch.object(services, "build_batch", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        ledger_integrate(cache=cache)

    # then: nothing taken, no transaction left open, and the next batch numbers all three
    assert connection.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
    assert PendingEvent.objects.count() == 3
    assert ledger_integrate(cache=cache) == 3
    assert TreeHead.objects.get().size == 5
    ledger_verify()


def test_an_entry_exists_right_after_commit_without_a_broker(django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        append_events(2)

    # then
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == [0, 1]
    assert not PendingEvent.objects.exists()


class TestKickDebounce:
    """With a broker, thousands of commits a second must not enqueue thousands of tasks."""

    @pytest.fixture(autouse=True)
    def broker_mode(self):
        conf = ledger_integrate_task.app.conf
        kick_flag().clear()
        kick_module._quiet_until = 0.0
        conf.task_always_eager = False
        try:
            with mock.patch.object(ledger_integrate_task, "delay") as delay:
                yield delay
        finally:
            conf.task_always_eager = True
            kick_flag().clear()
            kick_module._quiet_until = 0.0

    def test_many_commits_enqueue_one_task(self, broker_mode):
        # when
        for _ in range(100):
            kick()

        # then
        assert broker_mode.call_count == 1

    def test_a_commit_after_the_task_finished_enqueues_again(self, broker_mode):
        # given
        kick()
        append_events(3)

        # when: the task runs, drains the queue and lets go of the flag
        assert services.ledger_integrate_queued(linger=0) == 3
        kick_module._quiet_until = 0.0
        kick()

        # then
        assert broker_mode.call_count == 2

    def test_the_task_keeps_going_until_the_queue_is_empty(self, broker_mode):
        # given
        append_events(7)

        # when
        done = services.ledger_integrate_queued(max_batch=2, linger=0.01)

        # then
        assert done == 7
        assert not PendingEvent.objects.exists()

    def test_while_the_flag_is_held_a_process_stays_quiet_for_a_moment(self, broker_mode):
        # given: another process's task holds the flag
        assert kick_flag().set_if_absent()

        # when
        with mock.patch.object(type(kick_flag()), "set_if_absent", autospec=True) as check:
            check.return_value = False
            for _ in range(50):
                kick()

        # then: one look at the flag, then none for QUIET_SECONDS
        assert check.call_count == 1
        assert broker_mode.call_count == 0


def test_the_threads_of_a_worker_share_one_kick_flag(settings):
    # given: a URL no thread has used yet, and a flag that takes a moment to make (a Redis
    # client), so that every thread asks for it before any has one
    settings.LEDGER_KICK_REDIS_URL = ""
    kick_module._flags.pop("", None)
    original = kick_module._LocalFlag

    class SlowFlag(original):
        def __init__(self) -> None:
            time.sleep(0.05)
            super().__init__()

    barrier = threading.Barrier(8)
    flags = []

    def ask() -> None:
        barrier.wait()
        flags.append(kick_flag())

    # when
    with mock.patch.object(kick_module, "_LocalFlag", SlowFlag):
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    kick_module._flags.pop("", None)

    # then
    assert len({id(flag) for flag in flags}) == 1


@pytest.mark.django_db(transaction=True)
def test_an_entry_exists_right_after_a_real_commit():
    # when
    with transaction.atomic():
        services.ledger_append(kind="test.happened", actor="system:test", subject=None, data={})

    # then
    assert LedgerEntry.objects.count() == 1
    assert not PendingEvent.objects.exists()


def test_the_first_integration_creates_the_head():
    # given: a new (or flushed) database has no head row
    TreeHead.objects.all().delete()
    append_events(2)

    # when
    ledger_integrate()

    # then
    head = TreeHead.objects.get()
    assert (head.size, bytes(head.chain)) == (2, bytes(LedgerEntry.objects.get(seq=1).chain))


@requires_postgres  # a writer and the polling task at once: SQLite's shared in-memory test
# database refuses the task's read while the append holds the table ("table is locked")
@pytest.mark.django_db(transaction=True)
def test_a_quiet_commit_right_after_the_task_lets_go_of_the_flag_is_integrated():
    """A process that found the flag held skips kicking for QUIET_SECONDS; the task, once it
    has cleared the flag, polls for longer than that, so such a commit is not stranded."""
    conf = ledger_integrate_task.app.conf
    flag = kick_flag()
    flag.clear()
    released = threading.Event()
    real_clear = flag.clear

    def clear() -> None:
        real_clear()
        released.set()

    results: list[int] = []

    def task() -> None:
        try:
            results.append(services.ledger_integrate_queued(linger=0.01))
        finally:
            connection.close()

    conf.task_always_eager = False
    try:
        with (
            mock.patch.object(flag, "clear", side_effect=clear),
            mock.patch.object(ledger_integrate_task, "delay") as delay,
        ):
            worker = threading.Thread(target=task)
            worker.start()
            assert released.wait(10)
            # given: this process saw the flag held a moment ago, so its kick stays quiet
            kick_module._quiet_until = time.monotonic() + kick_module.QUIET_SECONDS

            # when
            append_events(1)
            worker.join(10)
    finally:
        conf.task_always_eager = True
        kick_module._quiet_until = 0.0
        real_clear()

    # then
    assert delay.call_count == 0
    assert results == [1]
    assert LedgerEntry.objects.count() == 1
