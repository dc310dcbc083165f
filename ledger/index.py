"""The subject map in the database: kept up to date and committed before each checkpoint.

The map itself (what it holds, how it hashes, its proofs) is ledger/verify/subject_map.py,
shared with the offline verifier. Here it lives in three append-only tables: leaves and
bucket-tree nodes are versioned by the index size they hold from, so a proof at any
committed size reads the newest row at or below that size; `SubjectIndexCommit` records
each committed root.

`subject_index_commit` runs inside `checkpoint_create`, under the tree head's lock: it
brings the map up to the head, appends the `ledger.subject_index_committed` entry as the
next entry of the log, and the checkpoint then signs the tree that ends with it. So every
checkpoint of size C commits the map of its first C - 1 entries and a history proven at C
is complete up to C - 1 (the commitment itself is about no subject).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from django.db import connection, transaction
from django.utils import timezone

from ledger import index_rows
from ledger.canonical import canonical_bytes
from ledger.models import SubjectIndexCommit, TreeHead
from ledger.verify.subject_map import (
    BUCKET_BITS,
    EMPTY,
    INDEX_EVENT,
    MAP_NAME,
    ZERO_CHAIN,
    MapProof,
    bucket_of,
    chain_next,
    key_hash,
    node_hash,
)

INDEX_ACTOR = "system:index"

# A bucket's records at index size %s: each key in the bucket's key range (one index
# probe each, walking the keys in order rather than every version of every record), then
# its newest version at or below the size, if it had one by then.
_RECORDS_AT = (
    "WITH RECURSIVE keys(key) AS ("
    " SELECT (SELECT key FROM ledger_subjectindexrecord WHERE key >= %s AND key <= %s"
    "  ORDER BY key LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT r.key FROM ledger_subjectindexrecord r"
    "  WHERE r.key > keys.key AND r.key <= %s ORDER BY r.key LIMIT 1)"
    " FROM keys WHERE keys.key IS NOT NULL)"
    " SELECT r.key, r.count, r.chain FROM keys JOIN ledger_subjectindexrecord r"
    " ON r.key = keys.key AND r.version = (SELECT MAX(m.version)"
    " FROM ledger_subjectindexrecord m WHERE m.key = keys.key AND m.version <= %s)"
)
_NEWEST_NODES = (
    # One index probe per position (newest version at or below the size asked): an OR of
    # positions made PostgreSQL scan the table. VALUES columns are column1, column2 on
    # PostgreSQL and SQLite alike.
    "SELECT w.column1, w.column2, (SELECT n.hash FROM ledger_subjectindexnode n "
    "WHERE n.level = w.column1 AND n.position = w.column2 AND n.version <= %s "
    "ORDER BY n.version DESC LIMIT 1) FROM (VALUES {values}) AS w"
)
NEWEST = 1 << 62


def _records(bucket: int, version: int) -> list[tuple[bytes, int, bytes]]:
    """The records of `bucket` in the map at index size `version`, in key order."""
    low, high = index_rows.bucket_range(bucket)
    with connection.cursor() as cursor:
        cursor.execute(_RECORDS_AT, [low, high, high, version])
        return sorted((bytes(k), c, bytes(h)) for k, c, h in cursor.fetchall())


def _nodes(positions: Sequence[tuple[int, int]], version: int) -> dict[tuple[int, int], bytes]:
    found: dict[tuple[int, int], bytes] = {}
    for chunk in index_rows.chunks(positions, 1000):
        values = ", ".join(["(%s, %s)"] * len(chunk))
        params = [value for position in chunk for value in position]
        with connection.cursor() as cursor:
            cursor.execute(_NEWEST_NODES.format(values=values), [version, *params])
            found.update({(lv, pos): bytes(h) for lv, pos, h in cursor.fetchall() if h})
    return found


# ---------------------------------------------------------------- keeping it up to date


def subject_index_latest() -> SubjectIndexCommit | None:
    return SubjectIndexCommit.objects.order_by("-size").first()


def subject_index_update(size: int) -> tuple[bytes, int]:
    """Bring the map up to the first `size` entries; return (root, subjects).

    The caller holds the map's writer lock (`subject_index_lock`), so its tables have one
    writer: `subject_index_catch_up`, or `checkpoint_create` with the head's lock too.
    """
    latest = subject_index_latest()
    start = latest.size if latest is not None else 0
    if latest is not None and start == size:
        return bytes(latest.root), latest.subjects
    if start > size:
        raise ValueError(f"the subject index is at size {start}, past {size}")
    touches = index_rows.touches(start, size)
    keys = {subject: key_hash(subject) for subject in touches}
    old = index_rows.latest_of_keys(list(keys.values()))
    records = []
    for subject, leaves in touches.items():
        key = keys[subject]
        count, chain = old.get(key, (0, ZERO_CHAIN))
        for leaf in leaves:
            count, chain = count + 1, chain_next(chain, leaf)
        records.append((key, size, subject, count, chain))
    index_rows.store_records(records)
    subjects = (latest.subjects if latest is not None else 0) + len(touches) - len(old)
    changed = sorted({bucket_of(record[0]) for record in records})
    if not changed:  # nothing about any subject: the map is unchanged
        root = bytes(latest.root) if latest is not None else EMPTY[BUCKET_BITS]
        SubjectIndexCommit.objects.create(size=size, root=root, subjects=subjects)
        return root, subjects
    new = {(0, bucket): h for bucket, h in index_rows.bucket_hashes(changed).items()}
    root = _update_tree(new, changed)
    index_rows.store_nodes(
        sorted((level, position, size, h) for (level, position), h in new.items())
    )
    SubjectIndexCommit.objects.create(size=size, root=root, subjects=subjects)
    return root, subjects


def _update_tree(new: dict[tuple[int, int], bytes], changed: list[int]) -> bytes:
    """Rehash the ancestors of the changed buckets into `new`; return the root."""
    positions = set(changed)
    needed: list[tuple[int, int]] = []
    for level in range(BUCKET_BITS):
        needed += [(level, p ^ 1) for p in positions if (level, p ^ 1) not in new]
        positions = {p >> 1 for p in positions}
        new.update({(level + 1, p): b"" for p in positions})  # placeholders, filled below
    stored = _nodes(needed, NEWEST)
    positions = set(changed)
    for level in range(BUCKET_BITS):
        positions = {p >> 1 for p in positions}
        for parent in positions:
            left, right = (
                new.get(child) or stored.get(child, EMPTY[level])
                for child in ((level, 2 * parent), (level, 2 * parent + 1))
            )
            new[(level + 1, parent)] = node_hash(left, right)
    return new.get((BUCKET_BITS, 0), EMPTY[BUCKET_BITS])


INDEX_LOCK_ID = 0x67705F6D6170  # "gp_map": the advisory lock of the map's one writer


def subject_index_lock() -> None:
    """The map's writer lock, held to the end of the transaction (PostgreSQL; SQLite has
    one writer anyway). Taken before the tree head's lock whenever both are held."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INDEX_LOCK_ID])


def subject_index_catch_up() -> int:
    """Bring the map up to the head's current size without the head's lock; return the
    entries indexed. The checkpoint then indexes, under the head's lock, only what came
    since: after an upgrade the whole log is indexed here, while integration goes on."""
    with transaction.atomic():
        subject_index_lock()
        size = TreeHead.objects.filter(pk=1).values_list("size", flat=True).first() or 0
        latest = subject_index_latest()
        start = latest.size if latest is not None else 0
        if size <= start:
            return 0
        subject_index_update(size)
        return size - start


def subject_index_event(size: int) -> bytes:
    """Update the map to `size`; return the canonical bytes of the entry committing it.

    `checkpoint_create` appends them as entry `size`, under the head's lock.
    """
    root, subjects = subject_index_update(size)
    data = {
        "map": MAP_NAME,
        "size": size,
        "root": base64.b64encode(root).decode("ascii"),
        "subjects": subjects,
    }
    event = {
        "type": INDEX_EVENT,
        "at": timezone.now(),
        "actor": INDEX_ACTOR,
        "subject": [],
        "data": data,
    }
    return canonical_bytes(event)


# ---------------------------------------------------------------- proofs


def subject_map_proof(subject: str, size: int) -> MapProof:
    """The map proof for `subject` in the map committed at index size `size`."""
    bucket = bucket_of(key_hash(subject))
    rows = _records(bucket, size)
    positions = [(level, (bucket >> level) ^ 1) for level in range(BUCKET_BITS)]
    stored = _nodes(positions, size)
    siblings = [stored.get(position, EMPTY[position[0]]) for position in positions]
    return MapProof(bucket, rows, siblings)
