"""Check the whole stored log against itself: `manage.py verify_ledger`.

Reads the entries in chunks of consecutive sequence numbers, recomputes each leaf hash
and the chain, rebuilds the tree with a CompactRange and compares every node it completes
with the stored one: leaves [lo, hi) complete exactly the nodes keyed
[2lo - popcount(lo), 2hi - popcount(hi)) (see `ledger.storage`), so each chunk of entries
comes with one range of nodes. Then every checkpoint's signature and root, and the tree
head. Along the way it recomputes the subject map from the entries alone and checks each
`ledger.subject_index_committed` entry's root (and the stored commit's) against it. It
stops at the first disagreement and names it.

Checkpoints are verified under the log key current at their size: starting from the first
key (`ledger.keys.log_key_first`, or the `first_key` given), each `ledger.key_rotated`
entry is followed once the rebuilt tree has passed it (its statement must be signed by
the key it replaces), so a key used before its announcement, or after its successor's,
is reported.

On PostgreSQL both ranges travel as binary COPY (no hex encoding of bytea), inside one
REPEATABLE READ snapshot.
"""

import hashlib
import io
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction

from ledger.keys import log_key_first, log_key_rotations
from ledger.merkle import CompactRange
from ledger.storage import ZERO_CHAIN, node_key
from ledger.verify.keyhistory import KeyHistory, KeyHistoryError, rotation_from_event
from ledger.verify.note import NoteError
from ledger.verify.subject_map import MapProofError, SubjectMap, index_commit


class LedgerTampered(Exception):
    """The stored log disagrees with itself; the message names the first bad row."""


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    nodes: int
    checkpoints: int
    event_bytes: int
    seconds: float
    index_commits: int = 0


def _nodes_before(leaves: int) -> int:
    """How many complete subtrees a tree of `leaves` leaves has: the first key of the next."""
    return 2 * leaves - leaves.bit_count()


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_unpack = struct.unpack_from
_NODE_ROW = struct.Struct(">hiqi32s")  # 2 fields: bigint id, 32-byte hash


def _copy_binary(cursor, query: str) -> tuple[bytes, int]:
    """A binary COPY of `query`: the data and where its first row starts."""
    buffer = io.BytesIO()
    cursor.copy_expert(f"COPY ({query}) TO STDOUT (FORMAT binary)", buffer)
    data = buffer.getvalue()
    if not data.startswith(_COPY_SIGNATURE):
        raise LedgerTampered("unexpected COPY output from the database")
    (extension,) = _unpack(">i", data, 15)
    return data, 19 + extension


def _entry_rows(data: bytes, pos: int) -> list[tuple]:
    """(seq, event, leaf hash, chain) rows of a binary COPY."""
    rows = []
    append = rows.append
    data += bytes(16)  # so that reading a row header at the trailer stays in bounds
    while True:
        fields, _, seq, length = _unpack(">hiqi", data, pos)
        if fields < 0:
            return rows
        pos += 18
        event = data[pos : pos + length]
        pos += length
        leaf_length, leaf, chain_length, chain = _unpack(">i32si32s", data, pos)
        if leaf_length != 32 or chain_length != 32:
            raise LedgerTampered(f"entry {seq}: leaf hash or chain is not 32 bytes")
        pos += 72
        append((seq, event, leaf, chain))


def _node_rows(data: bytes, pos: int) -> list[tuple]:
    """(id, hash) rows of a binary COPY (a misparsed row shows up as a wrong id or hash)."""
    body = data[pos:-2]
    if len(body) % _NODE_ROW.size:
        raise LedgerTampered("a tree node hash is not 32 bytes")
    return [(key, value) for _f, _l, key, _h, value in _NODE_ROW.iter_unpack(body)]


class _Reader:
    """Ranges of entries and nodes, read the fastest way this database allows."""

    def __init__(self, cursor) -> None:
        self.cursor = cursor
        self.binary = connection.vendor == "postgresql"

    def _rows(self, query: str) -> list[tuple]:
        self.cursor.execute(query)
        return [(key, *(bytes(value) for value in rest)) for key, *rest in self.cursor.fetchall()]

    def entries(self, lo: int, hi: int) -> list[tuple]:
        query = (
            "SELECT seq, event, leaf_hash, chain FROM ledger_ledgerentry "  # noqa: S608
            f"WHERE seq >= {int(lo)} AND seq < {int(hi)} ORDER BY seq"
        )
        if self.binary:
            return _entry_rows(*_copy_binary(self.cursor, query))
        return self._rows(query)

    def nodes(self, lo: int, hi: int) -> list[tuple]:
        query = (
            "SELECT id, hash FROM ledger_treenode "  # noqa: S608
            f"WHERE id >= {int(lo)} AND id < {int(hi)} ORDER BY id"
        )
        if self.binary:
            return _node_rows(*_copy_binary(self.cursor, query))
        return self._rows(query)

    def first_from(self, table: str, column: str, start: int) -> int | None:
        self.cursor.execute(f"SELECT min({column}) FROM {table} WHERE {column} >= %s", [start])  # noqa: S608
        return self.cursor.fetchone()[0]


def _entry_problem(seq: int, leaf: bytes, stored_leaf, chain: bytes, stored_chain, prev) -> str:
    if leaf != stored_leaf:
        if hashlib.sha256(prev + stored_leaf).digest() == stored_chain:
            return (
                f"entry {seq}: event bytes were altered "
                "(SHA-256(0x00 || event) is no longer the stored leaf hash)"
            )
        if chain == stored_chain:
            return f"entry {seq}: leaf hash was altered (the event and the chain agree)"
        return f"entry {seq}: event and leaf hash do not match, nor does the chain"
    return f"entry {seq}: chain hash was altered (SHA-256(previous chain || leaf) differs)"


class _Checkpoints:
    """Checkpoints in size order, checked as the rebuilt tree reaches each size."""

    def __init__(self, cursor, first_key: str | None = None) -> None:
        cursor.execute("SELECT size, origin, root, note FROM ledger_checkpoint ORDER BY size")
        self._rows = iter(cursor.fetchall())
        self._next = next(self._rows, None)
        # The announcements, found by their kind; each is followed only after the entry
        # stream has checked its bytes. A rotation hidden by changing its kind leaves the
        # later checkpoints signed by a key the history does not reach: reported there.
        self._rotations = log_key_rotations()
        try:
            self.history = KeyHistory(first_key or log_key_first(self._rotations))
        except NoteError as exc:
            raise LedgerTampered(f"the first log key does not parse ({exc})") from None
        self._lookahead = self._every_rotation(self.history.first)
        self.checked = 0

    def _every_rotation(self, first) -> KeyHistory:
        """The history as far as its announcements verify, read ahead of the entry stream:
        only to name a key used before its announcement in an error."""
        history = KeyHistory(first)
        for seq, event in self._rotations:
            try:
                history.follow(seq, rotation_from_event(event))
            except NoteError:
                break
        return history

    def _follow(self, size: int) -> None:
        while self._rotations and self._rotations[0][0] < size:
            seq, event = self._rotations.pop(0)
            try:
                self.history.follow(seq, rotation_from_event(event))
            except NoteError as exc:
                raise LedgerTampered(f"entry {seq}: {exc}") from None

    def check(self, tree: CompactRange) -> None:
        while self._next is not None and self._next[0] <= tree.size:
            size, origin, root, note = self._next
            where = f"checkpoint at size {size}"
            self._follow(size)
            try:
                if origin != self.history.origin:
                    raise NoteError(f"origin {origin!r} is not the log key's name")
                checkpoint, _cosigners = self.history.verify_checkpoint(note)
            except KeyHistoryError:
                why = self._lookahead.misuse(size, note)
                raise LedgerTampered(f"{where}: signed note does not verify ({why})") from None
            except NoteError as exc:
                raise LedgerTampered(f"{where}: signed note does not verify ({exc})") from None
            if checkpoint.size != size or checkpoint.root != bytes(root):
                raise LedgerTampered(
                    f"{where}: the signed note says size {checkpoint.size} and a root other "
                    "than the row's"
                )
            if size != tree.size or checkpoint.root != tree.root():
                raise LedgerTampered(f"{where}: signed root is not the root of the entries")
            self.checked += 1
            self._next = next(self._rows, None)

    def check_none_left(self, size: int) -> None:
        if self._next is not None:
            raise LedgerTampered(
                f"checkpoint at size {self._next[0]}: beyond the ledger ({size} entries)"
            )


def ledger_verify(
    *,
    chunk_size: int = 50000,
    progress: Callable[[int, int], None] | None = None,
    first_key: str | None = None,
) -> VerifyReport:
    """Verify every entry, node, checkpoint and the head; raise LedgerTampered on the first
    problem. `progress(done, total)` is called after each chunk of entries; `first_key` is
    the verifier key the log's key history starts from (default `log_key_first()`)."""
    started = time.perf_counter()
    # One snapshot (REPEATABLE READ on PostgreSQL), so that the head, entries, nodes and
    # checkpoints agree while the integrator keeps appending.
    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if snapshot:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT size, root, chain FROM ledger_treehead WHERE id = 1")
        head = cursor.fetchone()
        total = head[0] if head else 0
        reader = _Reader(cursor)
        checkpoints = _Checkpoints(cursor, first_key)
        index = _IndexCheck(cursor)
        tree, prev, event_bytes = _verify_entries(
            reader, checkpoints, index, chunk_size, total, progress
        )
        _check_nothing_beyond(reader, tree.size)
        checkpoints.check_none_left(tree.size)
        _check_head(head, tree, prev)
    return VerifyReport(
        entries=tree.size,
        nodes=_nodes_before(tree.size),
        checkpoints=checkpoints.checked,
        event_bytes=event_bytes,
        seconds=time.perf_counter() - started,
        index_commits=index.checked,
    )


class _IndexCheck:
    """The subject map recomputed entry by entry; each commitment entry must match it."""

    def __init__(self, cursor) -> None:
        self.map = SubjectMap()
        self.checked = 0
        cursor.execute("SELECT size, root FROM ledger_subjectindexcommit")
        self.stored = {size: bytes(root) for size, root in cursor.fetchall()}

    def add(self, seq: int, event: bytes, leaf: bytes) -> None:
        try:
            commit = index_commit(event)
        except MapProofError as exc:
            raise LedgerTampered(f"entry {seq}: {exc}") from None
        if commit is not None:
            size, root = commit
            if size != seq:
                raise LedgerTampered(f"entry {seq}: commits the subject map of {size} entries")
            if root != self.map.root():
                raise LedgerTampered(
                    f"entry {seq}: the subject map root differs from the one recomputed "
                    "from the entries before it"
                )
            if self.stored.get(size, root) != root:
                raise LedgerTampered(f"subject index commit {size}: stored root differs")
            self.checked += 1
        self.map.add(seq, event, leaf)


def _verify_entries(
    reader: _Reader,
    checkpoints: _Checkpoints,
    subject_map: _IndexCheck,
    chunk_size: int,
    total: int,
    progress,
) -> tuple[CompactRange, bytes, int]:
    sha256 = hashlib.sha256
    tree = CompactRange()
    append = tree.append
    prev = ZERO_CHAIN
    event_bytes = 0
    checkpoints.check(tree)
    lo = 0
    while True:
        hi = lo + chunk_size
        entries = reader.entries(lo, hi)
        nodes = reader.nodes(_nodes_before(lo), _nodes_before(hi))
        position = 0
        for seq, event, stored_leaf, stored_chain in entries:
            if seq != tree.size:
                raise LedgerTampered(f"entry {tree.size}: missing (the next stored is {seq})")
            event_bytes += len(event)
            leaf = sha256(b"\x00" + event).digest()
            chain = sha256(prev + leaf).digest()
            if leaf != stored_leaf or chain != stored_chain:
                raise LedgerTampered(
                    _entry_problem(seq, leaf, stored_leaf, chain, stored_chain, prev)
                )
            prev = chain
            subject_map.add(seq, event, leaf)
            key = 2 * seq - seq.bit_count()
            for level, index, node in append(leaf):
                stored = nodes[position] if position < len(nodes) else None
                if stored is None or stored[0] != key + level:
                    raise LedgerTampered(f"node ({level}, {index}): missing")
                if stored[1] != node:
                    raise LedgerTampered(
                        f"node ({level}, {index}): stored hash differs from the one "
                        "recomputed from the entries"
                    )
                position += 1
            checkpoints.check(tree)
        if progress is not None:
            progress(tree.size, total)
        if len(entries) < chunk_size:
            return tree, prev, event_bytes
        lo = hi


def _check_nothing_beyond(reader: _Reader, size: int) -> None:
    seq = reader.first_from("ledger_ledgerentry", "seq", size)
    if seq is not None:
        raise LedgerTampered(f"entry {size}: missing (the next stored is {seq})")
    key = reader.first_from("ledger_treenode", "id", _nodes_before(size))
    if key is not None:
        raise LedgerTampered(f"node {node_key(key)}: stored beyond the tree")


def _check_head(head: tuple | None, tree: CompactRange, chain: bytes) -> None:
    size, root, head_chain = head if head else (0, tree.root(), ZERO_CHAIN)
    if size != tree.size:
        raise LedgerTampered(f"tree head: size {size}, but {tree.size} entries are stored")
    if bytes(root) != tree.root():
        raise LedgerTampered(f"tree head: root differs from the root of the {size} entries")
    if bytes(head_chain) != chain:
        raise LedgerTampered("tree head: chain differs from the last entry's chain")
