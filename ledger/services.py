"""Writes to the ledger.

Every domain service calls `ledger_append` in its own transaction: the event goes into
the unsequenced queue (PendingEvent), with no global lock. The integrator
(`ledger_integrate`, run by a Celery task kicked on commit and by a periodic sweep) is the
only writer of the tree: it takes committed events in batches, numbers them without gaps,
and stores entries, tree nodes and the new head in one transaction.

Locking: only the integrator locks the TreeHead row, and it does so first; request
transactions never touch it. The integrator relies on READ COMMITTED (PostgreSQL's
default): every statement after the head lock sees what earlier integrators committed.
"""

import contextlib
import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ledger import kick as integrator_kick
from ledger import storage
from ledger.canonical import canonical_bytes
from ledger.errors import LedgerAppendOutsideTransaction, LedgerCorrupted, SigningKeyUnavailable
from ledger.fence import fence_check
from ledger.index import (
    INDEX_ACTOR,
    INDEX_EVENT,
    subject_index_catch_up,
    subject_index_event,
    subject_index_lock,
)
from ledger.keys import log_key_history, log_signer_for
from ledger.kick import FLAG_TTL, POLL_SECONDS, QUIET_SECONDS, kick_flag
from ledger.merkle import EMPTY_ROOT, CompactRange, range_hash, subtree_nodes
from ledger.models import Checkpoint, PendingEvent, TreeHead
from ledger.signing import Signer, sign_checkpoint
from ledger.subjects import Subject, subject_keys
from ledger.verify.note import NoteError

"""The chain value before entry 0."""

LINGER_SECONDS = 0.05
"""How long the integrator task waits for more commits before it lets go of the flag."""


def actor_key(actor: Any) -> str:
    """`user:<id>` for a user, the string itself for a system actor ("system:expiry")."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return f"user:{actor.pk}"


def ledger_append(
    *,
    kind: str,
    actor: Any,
    subject: Subject | Iterable[Subject] | None,
    data: Mapping[str, Any],
    at: dt.datetime | None = None,
) -> PendingEvent:
    """Queue one canonical event in the caller's transaction; the integrator numbers it.

    `at`: the event's time, when the service stamped its rows with one (so a recovery that
    rebuilds the rows from the event gives them the same time, ledger/recovery.py)."""
    if not connection.in_atomic_block:
        raise LedgerAppendOutsideTransaction(kind=kind)
    subjects = subject_keys(subject)
    actor_name = actor_key(actor)
    now = at or timezone.now()
    event = {
        "type": kind,
        "at": now,
        "actor": actor_name,
        "subject": subjects,
        "data": dict(data),
    }
    pending = PendingEvent(
        kind=kind, subjects=subjects, actor=actor_name, event=canonical_bytes(event), created_at=now
    )
    # Every write of the registry passes here: one hand-written INSERT, not the ORM's save.
    pending.pk = storage.pending_event_insert(
        kind=kind, subjects=subjects, actor=actor_name, event=pending.event, created_at=now
    )
    pending._state.adding = False
    pending._state.db = connection.alias
    transaction.on_commit(kick, robust=True)
    return pending


def ledger_append_many(
    *,
    kind: str,
    actor: Any,
    events: Iterable[tuple[Subject | Iterable[Subject] | None, Mapping[str, Any]]],
    returning: bool = True,
) -> list[int]:
    """Queue one canonical event of `kind` per (subject, data), in order, in the caller's
    transaction, with one INSERT per few hundred events instead of one each: what many
    `ledger_append` calls queue (same kind, actor and moment), for a service that makes many
    changes of one kind at once (a month of hourly retirements). Returns the pending ids;
    with `returning=False` nothing, and inside `deferred_writes()` the INSERT travels with
    the caller's next statement."""
    if not connection.in_atomic_block:
        raise LedgerAppendOutsideTransaction(kind=kind)
    actor_name = actor_key(actor)
    now = timezone.now()
    rows = []
    for subject, data in events:
        subjects = subject_keys(subject)
        event = {
            "type": kind,
            "at": now,
            "actor": actor_name,
            "subject": subjects,
            "data": dict(data),
        }
        rows.append((kind, subjects, actor_name, canonical_bytes(event), now))
    if not rows:
        return []
    ids = storage.pending_events_insert(rows, returning=returning)
    transaction.on_commit(kick, robust=True)
    return ids


def kick() -> None:
    """On commit of an append: integrate right here without a broker; with one, make sure
    the integrator task will see the commit (ledger.kick)."""
    if current_app.conf.task_always_eager:
        while ledger_integrate():
            pass
        return
    integrator_kick.kick()


def _resume_tree(size: int, root: bytes) -> CompactRange:
    """The compact range of the stored tree, checked against the head's root."""
    keys = subtree_nodes(0, size)
    nodes = storage.fetch_nodes(keys)
    if len(nodes) != len(keys):
        raise LedgerCorrupted(
            f"tree nodes {sorted(set(keys) - set(nodes))} of the head (size {size}) are missing"
        )
    tree = CompactRange(size, [nodes[key] for key in keys])
    if tree.root() != root:
        raise LedgerCorrupted(f"the stored nodes do not give the head's root (size {size})")
    return tree


def build_batch(
    tree: CompactRange, chain: bytes, pending: Iterable[tuple], integrated_at: Any
) -> tuple[list[tuple], list[tuple], list[tuple], bytes]:
    """Number pending rows (id, kind, actor, subjects, event, created_at) from tree.size on.

    Appends their leaf hashes to `tree`; returns the entry, subject and node rows to
    insert, and the new chain head.
    """
    sha256 = hashlib.sha256
    entries: list[tuple] = []
    subjects: list[tuple] = []
    nodes: list[tuple] = []
    for pending_id, kind, actor, keys, event, created_at in pending:
        event = bytes(event)
        seq = tree.size
        leaf = sha256(b"\x00" + event).digest()
        chain = sha256(chain + leaf).digest()
        entries.append(
            (seq, kind, actor, event, leaf, chain, created_at, integrated_at, pending_id)
        )
        if isinstance(keys, str):
            keys = json.loads(keys)
        subjects.extend((key, seq) for key in keys)
        base = 2 * seq - seq.bit_count()  # storage.node_id of the leaf
        nodes.extend((base + level, h) for level, _index, h in tree.append(leaf))
    return entries, subjects, nodes, chain


ENTRY_COLUMNS = (
    "seq",
    "kind",
    "actor",
    "event",
    "leaf_hash",
    "chain",
    "event_at",
    "integrated_at",
    "pending_id",
)


def store_batch(entries: list[tuple], subjects: list[tuple], nodes: list[tuple]) -> None:
    """Insert what `build_batch` made (the integrator, and benchmarks' bulk loads)."""
    storage.bulk_insert("ledger_ledgerentry", ENTRY_COLUMNS, entries)
    storage.bulk_insert("ledger_entrysubject", ("key", "seq"), subjects)
    storage.bulk_insert_ints_bytes("ledger_treenode", ("id", "hash"), nodes)


class TreeCache:
    """The tree as one integrator loop's last batch left it (`ledger_integrate_queued`).

    The next batch resumes from it, instead of from the stored nodes, only when the head it
    has just locked has that size and that root: the root commits to every leaf, so the
    frontier is the same. Anything else (another integrator, a checkpoint's own entry, a
    batch that did not commit) falls back to `_resume_tree` and its checks."""

    __slots__ = ("_frontier", "_root", "_size")

    def __init__(self) -> None:
        self._size, self._root, self._frontier = -1, b"", []

    def resume(self, size: int, root: bytes) -> CompactRange | None:
        if size != self._size or root != self._root:
            return None
        return CompactRange(size, self._frontier)

    def keep(self, tree: CompactRange, root: bytes) -> None:
        self._size, self._root, self._frontier = tree.size, root, tree.frontier


def ledger_integrate(*, max_batch: int = 5000, cache: TreeCache | None = None) -> int:
    """Number up to `max_batch` committed pending events; return how many were integrated.

    `cache`: the integrator loop's, to resume the tree without reading its nodes; then, on
    PostgreSQL outside a transaction, a batch costs two round trips (`_integrate_directly`)."""
    if (
        cache is not None
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.get_autocommit()
    ):
        done = _integrate_directly(max_batch, cache)
        if done is not None:
            return done
    return _integrate(max_batch, cache)


def _integrate_directly(max_batch: int, cache: TreeCache) -> int | None:
    """One batch in two round trips: BEGIN, the head's lock and the take; then the rows, the
    head and COMMIT. The statements of `_integrate`, with the transaction begun and ended in
    the SQL rather than by `transaction.atomic` (which costs a round trip each way).

    None, having changed nothing, when there is no head row yet (`_integrate` creates it)."""
    with connection.cursor() as cursor:
        try:
            head, pending = storage.pending_take_head_locked(cursor, max_batch)
            if head is None or not pending:
                cursor.execute("ROLLBACK")
                return None if head is None else 0
            size, root, chain = head
            tree = cache.resume(size, root) or _resume_tree(size, root)
            now = timezone.now()
            entries, subjects, nodes, chain = build_batch(tree, chain, pending, now)
            root = tree.root()
            head = (tree.size, root, chain, now)
            cache.keep(tree, root)  # before the COMMIT: if it fails, the cache misses
            if not storage.batch_write(
                cursor, ENTRY_COLUMNS, entries, subjects, nodes, head, commit=True
            ):
                store_batch(entries, subjects, nodes)
                storage.tree_head_update(cursor, size=tree.size, root=root, chain=chain, now=now)
                cursor.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cursor.execute("ROLLBACK")  # a broken connection rolls back by itself
            raise
    return len(pending)


@transaction.atomic
def _integrate(max_batch: int, cache: TreeCache | None) -> int:
    with connection.cursor() as cursor:
        size, root, chain = storage.tree_head_lock(cursor, empty_root=EMPTY_ROOT)
        pending = storage.pending_take(cursor, max_batch)
        if not pending:
            return 0
        tree = cache.resume(size, root) if cache is not None else None
        if tree is None:
            tree = _resume_tree(size, root)
        now = timezone.now()
        entries, subjects, nodes, chain = build_batch(tree, chain, pending, storage.db_time(now))
        root = tree.root()
        head = (tree.size, root, chain, storage.db_time(now))
        if not storage.batch_write(cursor, ENTRY_COLUMNS, entries, subjects, nodes, head):
            store_batch(entries, subjects, nodes)
            storage.tree_head_update(cursor, size=tree.size, root=root, chain=chain, now=now)
        if cache is not None:
            # Before the commit: if it fails, the head keeps its old size and the cache misses.
            cache.keep(tree, root)
    return len(pending)


def ledger_integrate_pending(*, max_batch: int = 5000) -> int:
    """Integrate batches until the queue is empty: the periodic sweep."""
    total = 0
    while done := ledger_integrate(max_batch=max_batch):
        total += done
    return total


def ledger_integrate_queued(
    *, max_batch: int = 5000, max_seconds: float = 30.0, linger: float = LINGER_SECONDS
) -> int:
    """Integrate while commits keep coming, then let go of the kick flag: the kicked task.

    Holds the flag (see `ledger.kick`) and integrates what has been committed every
    POLL_SECONDS, in one transaction per poll however many commits came; stops when
    nothing has come for `linger` seconds, or after `max_seconds` (the next kick or the
    sweep carry on).
    """
    flag = kick_flag()
    cache = TreeCache()
    started = refreshed = last_seen = time.monotonic()
    flag.refresh()
    total = done = 0
    while (now := time.monotonic()) - last_seen < linger and now - started < max_seconds:
        if now - refreshed > FLAG_TTL / 4:
            flag.refresh()
            refreshed = now
        done = _integrate_committed(max_batch, cache, look=not done)
        total += done
        if done:
            last_seen = time.monotonic()
        if done < max_batch:
            time.sleep(POLL_SECONDS)
    flag.clear()
    # Processes that found the flag held do not kick for QUIET_SECONDS: what they commit
    # meanwhile is still this task's to integrate.
    until = time.monotonic() + QUIET_SECONDS + 2 * POLL_SECONDS
    while time.monotonic() < until:
        total += _integrate_committed(max_batch, cache)
        time.sleep(POLL_SECONDS)
    return total + ledger_integrate_pending(max_batch=max_batch)


def _integrate_committed(max_batch: int, cache: TreeCache, *, look: bool = True) -> int:
    """One poll. A cheap look first (an empty ledger_integrate still locks the head row),
    unless the last poll found events: under load the queue is rarely empty."""
    if look:
        with connection.cursor() as cursor:
            if not storage.pending_exists(cursor):
                return 0
    return ledger_integrate(max_batch=max_batch, cache=cache)


def _head() -> tuple[int, bytes]:
    head = TreeHead.objects.filter(pk=1).values_list("size", "root").first()
    if head is None:
        return 0, EMPTY_ROOT
    return head[0], bytes(head[1])


def checkpoint_create() -> tuple[Checkpoint, bool]:
    """Commit the subject map and sign the tree head, if it grew since the last checkpoint.

    Outside a transaction (the periodic task, `manage.py checkpoint`), the map is first
    brought up to the head without the head's lock (`subject_index_catch_up`: after an
    upgrade, the whole log), so the integrator waits only for the entries that came since.

    Under the head's lock (the integrator's), the subject map is brought up to the head and
    its root appended as the next entry (`ledger.subject_index_committed`); the checkpoint
    signs the tree ending with that entry, so it commits the map of every entry before it.

    Refused with `signing_fenced` (409) on a database the log was not signed from.

    Returns the latest checkpoint and whether it was created now. The root signed is
    recomputed from the stored nodes the proofs are served from, and must equal the head's.
    It is signed by the log key current at its size (ledger/rotation.py); refused with
    `signing_key_unavailable` (409) when this process does not hold that key.
    """
    if settings.LEDGER_SUBJECT_INDEX and not connection.in_atomic_block:
        subject_index_catch_up()
    return _checkpoint_create()


@transaction.atomic
def _checkpoint_create() -> tuple[Checkpoint, bool]:
    size, root = _head()
    latest = Checkpoint.objects.order_by("-size").first()
    if latest is not None and latest.size >= size:
        return latest, False
    fence_check()  # a restored database signs nothing until reconciled (ledger/fence.py)
    with connection.cursor() as cursor:
        if not settings.LEDGER_SUBJECT_INDEX:
            return _sign(size, root)
        subject_index_lock()  # before the head's lock, as the catch-up takes it alone
        size, root, chain = storage.tree_head_lock(cursor, empty_root=EMPTY_ROOT)
        latest = Checkpoint.objects.order_by("-size").first()
        if latest is not None and latest.size >= size:
            return latest, False  # a concurrent call committed and signed meanwhile
        # The map of every entry so far, committed as the tree's last entry (ledger/index.py).
        tree = _resume_tree(size, root)
        chain = _append_own(cursor, tree, chain, subject_index_event(size))
        size, root = tree.size, tree.root()
        storage.tree_head_update(cursor, size=size, root=root, chain=chain, now=timezone.now())
    return _sign(size, root)


def _append_own(cursor: Any, tree: CompactRange, chain: bytes, event: bytes) -> bytes:
    """Append the index commitment as the next entry, with the head locked; return the
    new chain head. It takes a pending id like every entry, and at once gives it back."""
    now = timezone.now()
    pending_id = storage.pending_event_insert(
        kind=INDEX_EVENT, subjects=[], actor=INDEX_ACTOR, event=event, created_at=now
    )
    cursor.execute("DELETE FROM ledger_pendingevent WHERE id = %s", [pending_id])
    pending = [(pending_id, INDEX_EVENT, INDEX_ACTOR, [], event, storage.db_time(now))]
    entries, subjects, nodes, chain = build_batch(tree, chain, pending, storage.db_time(now))
    store_batch(entries, subjects, nodes)
    return chain


def _sign(size: int, root: bytes) -> tuple[Checkpoint, bool]:
    nodes = storage.fetch_nodes(subtree_nodes(0, size))
    try:
        stored_root = range_hash(0, size, nodes)
    except KeyError as exc:
        raise LedgerCorrupted(f"cannot compute the root of size {size}: {exc}") from None
    if stored_root != root:
        raise LedgerCorrupted(f"the stored nodes do not give the head's root (size {size})")
    signer = _signer_at(size)
    note = sign_checkpoint(signer, settings.REGISTRY_ORIGIN, size, root)
    key_id = signer.verifier.key_id.hex()
    try:
        with transaction.atomic():
            checkpoint = Checkpoint.objects.create(
                origin=settings.REGISTRY_ORIGIN, size=size, root=root, note=note, key_id=key_id
            )
    except IntegrityError:
        # A concurrent call signed the same size first (Ed25519 is deterministic: same note).
        return Checkpoint.objects.get(size=size), False
    return checkpoint, True


def _signer_at(size: int) -> Signer:
    """The configured signer of the log key current at `size` (ledger.verify.keyhistory)."""
    try:
        key = log_key_history().key_at(size)
    except NoteError as exc:  # a KeyHistoryError, or REGISTRY_FIRST_VKEY unreadable
        raise LedgerCorrupted(f"the ledger's key history does not verify: {exc}") from None
    signer = log_signer_for(key)
    if signer is None:
        raise SigningKeyUnavailable(
            f"The checkpoint of size {size} must be signed by the log key "
            f"{key.name}+{key.key_id.hex()}, which this process does not hold: set "
            "REGISTRY_SIGNING_KEY (or REGISTRY_NEXT_SIGNING_KEY) to it.",
            size=size,
            key_id=key.key_id.hex(),
        )
    return signer
