"""Raw SQL for the ledger's hot paths: node keys, node look-ups and bulk inserts.

Tree nodes are keyed by their position in completion order: appending leaf i completes
the leaf and then one node per trailing 1 bit of i, and a tree of i leaves holds
2i - popcount(i) complete nodes. So node (level, index), completed by leaf
i = (index + 1) * 2**level - 1, gets key 2i - popcount(i) + level. Keys rise
monotonically as the integrator appends (the B-tree only grows at its right edge), and
a full scan in key order meets the nodes in the order `CompactRange.append` returns them.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from collections.abc import Iterable, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from django.db import connection

from ledger.merkle import NodeKey
from registry.deferred_writes import execute_or_defer
from registry.prepared import execute_prepared

__all__ = ["bulk_insert", "fetch_nodes", "node_id", "node_key"]


def node_id(level: int, index: int) -> int:
    """The storage key of node (level, index)."""
    last_leaf = ((index + 1) << level) - 1
    return 2 * last_leaf - last_leaf.bit_count() + level


def node_key(key: int) -> NodeKey:
    """The (level, index) stored under `key` (inverse of `node_id`)."""
    if key < 0:
        raise ValueError(f"invalid node key {key}")
    # The leaf i whose append completed the node: the largest i with 2i - popcount(i) <= key.
    lo, hi = key // 2, key // 2 + 64
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if 2 * mid - mid.bit_count() <= key:
            lo = mid
        else:
            hi = mid - 1
    level = key - (2 * lo - lo.bit_count())
    return level, lo >> level


def fetch_nodes(keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """The stored hashes of these nodes, in one query; absent nodes are left out."""
    ids = {node_id(level, index): (level, index) for level, index in keys}
    if not ids:
        return {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT id, hash FROM ledger_treenode WHERE id = ANY(%s)", [list(ids)])
        else:
            cursor.execute(
                "SELECT id, hash FROM ledger_treenode "
                "WHERE id IN (SELECT value FROM json_each(%s))",
                [json.dumps(list(ids))],
            )
        return {ids[key]: bytes(value) for key, value in cursor.fetchall()}


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_TEXT = {
    # COPY's text format: backslash escapes, \N for NULL, bytea as \x<hex> (backslash doubled).
    type(None): lambda value: "\\N",
    bool: lambda value: "t" if value else "f",
    int: str,
    str: lambda value: value.translate(_COPY_ESCAPES),
    bytes: lambda value: "\\\\x" + value.hex(),
    memoryview: lambda value: "\\\\x" + value.hex(),
    dt.datetime: dt.datetime.isoformat,
}


def bulk_insert(table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Insert rows fast: COPY on PostgreSQL, executemany elsewhere. Values are trusted."""
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            buffer = io.StringIO()
            text = _COPY_TEXT
            buffer.writelines(
                "\t".join([text[type(value)](value) for value in row]) + "\n" for row in rows
            )
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                rows,
            )


_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_PGCOPY_TRAILER = b"\xff\xff"


def bulk_insert_ints_bytes(
    table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Insert rows of bigint columns followed by one bytea column (bytes), fast.

    On PostgreSQL, COPY in the binary format: neither side hex-encodes the bytes (for
    mirrored entries, 3x faster than text COPY, measured). Elsewhere `bulk_insert`.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        bulk_insert(table, columns, rows)
        return
    width = len(columns)
    # Per row: field count, then (length 8, value) per bigint, then the bytea's length; one
    # list comprehension per layout (a generic loop per row cost 3x as much, measured).
    pack = struct.Struct("!h" + "iq" * (width - 1) + "i").pack
    if width == 3:
        heads = [pack(3, 8, a, 8, b, len(data)) for a, b, data in rows]
    elif width == 2:
        heads = [pack(2, 8, a, len(data)) for a, data in rows]
    else:
        heads = [
            pack(width, *[x for value in row[:-1] for x in (8, value)], len(row[-1]))
            for row in rows
        ]
    parts = [
        _PGCOPY_HEADER,
        *chain.from_iterable(zip(heads, [row[-1] for row in rows], strict=True)),
        _PGCOPY_TRAILER,
    ]
    _copy_binary(table, columns, b"".join(parts))


_BINARY_INT_FIELDS = {"h": "ih", "i": "ii", "q": "iq"}  # length, then the value
_BINARY_INT_SIZES = {"h": 2, "i": 4, "q": 8}


def bulk_insert_binary(
    table: str, columns: Sequence[str], formats: str, rows: Sequence[Sequence[object]]
) -> None:
    """Insert rows fast, in COPY's binary format on PostgreSQL (`bulk_insert` elsewhere).

    `formats` gives each column's type, one letter each: h smallint, i integer, q bigint,
    b bytea, t text. Binary needs the exact width of each integer column, which text COPY
    does not; in return neither side hex-encodes bytes. Each row is one `struct` pack, with
    one compiled layout per combination of its variable lengths.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        bulk_insert(table, columns, rows)
        return
    sizes = [_BINARY_INT_SIZES.get(code) for code in formats]  # None: variable length
    layouts: dict[tuple[int, ...], Any] = {}

    def layout(lengths: tuple[int, ...]) -> Any:
        parts, variable = ["!h"], iter(lengths)
        for code in formats:
            parts.append(_BINARY_INT_FIELDS[code] if code in "hiq" else f"i{next(variable)}s")
        return struct.Struct("".join(parts)).pack

    chunks = [_PGCOPY_HEADER]
    for row in rows:
        args: list[Any] = [len(columns)]
        lengths = []
        for size, code, value in zip(sizes, formats, row, strict=True):
            if size is None:
                value = value.encode("utf-8") if code == "t" else bytes(value)
                size = len(value)
                lengths.append(size)
            args += (size, value)
        key = tuple(lengths)
        pack = layouts.get(key) or layouts.setdefault(key, layout(key))
        chunks.append(pack(*args))
    chunks.append(_PGCOPY_TRAILER)
    _copy_binary(table, columns, b"".join(chunks))


def _copy_binary(table: str, columns: Sequence[str], data: bytes) -> None:
    # In one read: psycopg2 reads the file 8 KB at a time by default, taking the GIL back
    # for each read, and a thread that hashes meanwhile holds it up to the switch interval
    # each time (replication's storing thread: a batch's COPY took 4.3 us an entry beside
    # a hashing thread, 2.5 in one read, measured).
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)",
            io.BytesIO(data),
            max(len(data), 8192),
        )


# ---------------------------------------------------------------- the write path and the head


def db_time(value: Any) -> Any:
    """A datetime as the raw SQL of this database takes it (COPY formats its own)."""
    if connection.vendor == "postgresql":
        return value
    return connection.ops.adapt_datetimefield_value(value)


def pending_event_insert(
    *, kind: str, subjects: list[str], actor: str, event: bytes, created_at: dt.datetime
) -> int:
    """Queue one event (`ledger_append`'s only statement); return its pending id."""
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            "gp_pending_event_insert",
            "INSERT INTO ledger_pendingevent (kind, subjects, actor, event, created_at) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            [kind, json.dumps(subjects), actor, event, db_time(created_at)],
        )
        return cursor.fetchone()[0]


_PENDING_MANY = (
    "INSERT INTO ledger_pendingevent (kind, subjects, actor, event, created_at) "
    "VALUES {rows} RETURNING id"
)
PENDING_ROWS = 500  # rows per multi-row INSERT (SQLite allows 32,766 parameters)


def pending_events_insert(
    rows: list[tuple[str, list[str], str, bytes, dt.datetime]], *, returning: bool = True
) -> list[int]:
    """Queue many events, (kind, subjects, actor, event, created_at) each, with one
    multi-row INSERT per `PENDING_ROWS`; return their pending ids in the order given (ids
    are drawn row by row, so the integrator numbers them in that order). With
    `returning=False` return nothing: inside `deferred_writes()` the INSERT then travels
    with the next statement (registry/deferred_writes.py), still before it."""
    ids: list[int] = []
    for i in range(0, len(rows), PENDING_ROWS):
        chunk = rows[i : i + PENDING_ROWS]
        sql = _PENDING_MANY.format(rows=", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk)))
        params: list[Any] = []
        for kind, subjects, actor, event, created_at in chunk:
            params += [kind, json.dumps(subjects), actor, event, db_time(created_at)]
        if not returning:
            execute_or_defer(sql.removesuffix(" RETURNING id"), params)
            continue
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids += sorted(row[0] for row in cursor.fetchall())
    return ids


ZERO_CHAIN = bytes(32)


def tree_head_lock(cursor: Any, *, empty_root: bytes) -> tuple[int, bytes, bytes]:
    """(size, root, chain) of the tree head, locked until the transaction ends.

    The ledger's one lock: only the integrator takes it, first and alone
    (docs/architecture.md, "Lock order"); request transactions never do.
    """
    select = "SELECT size, root, chain FROM ledger_treehead WHERE id = 1"
    if connection.features.has_select_for_update:
        select += " FOR UPDATE"
    cursor.execute(select)
    row = cursor.fetchone()
    if row is None:
        # The first integration (or the first after a test flush) creates the head.
        cursor.execute(
            "INSERT INTO ledger_treehead (id, size, root, chain, updated_at) "
            "VALUES (1, 0, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            [empty_root, ZERO_CHAIN, db_time(dt.datetime.now(dt.UTC))],
        )
        cursor.execute(select)
        row = cursor.fetchone()
    size, root, chain = row
    return size, bytes(root), bytes(chain)


def tree_head_update(
    cursor: Any, *, size: int, root: bytes, chain: bytes, now: dt.datetime
) -> None:
    """Advance the (locked) tree head."""
    cursor.execute(_HEAD_UPDATE, [size, root, chain, db_time(now)])


_HEAD_UPDATE = (
    "UPDATE ledger_treehead SET size = %s, root = %s, chain = %s, updated_at = %s WHERE id = 1"
)


SMALL_BATCH = 64
"""Up to this many entries, the integrator writes a batch with plain INSERTs sent with the
head's UPDATE in one round trip (`batch_write`); beyond it, COPY is cheaper per row."""


def batch_write(
    cursor: Any,
    entry_columns: Sequence[str],
    entries: list[tuple],
    subjects: list[tuple],
    nodes: list[tuple],
    head: tuple[int, bytes, bytes, dt.datetime],
    *,
    commit: bool = False,
) -> bool:
    """On PostgreSQL, for a batch of at most SMALL_BATCH entries: insert its entry, subject
    and node rows and advance the (locked) head (size, root, chain, now) in one round trip.

    Returns False, having written nothing, for anything else (the caller COPYs). The
    statements travel together because psycopg2 binds parameters client side; they run in
    order in the caller's transaction, as separate calls would. `commit`: then COMMIT, in
    the same round trip (the transaction `pending_take_head_locked` began)."""
    if connection.vendor != "postgresql" or not entries or len(entries) > SMALL_BATCH:
        return False
    params: list[Any] = []
    sql = []
    for table, columns, rows in (
        ("ledger_ledgerentry", entry_columns, entries),
        ("ledger_entrysubject", ("key", "seq"), subjects),
        ("ledger_treenode", ("id", "hash"), nodes),
    ):
        if not rows:
            continue
        marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql.append(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608
            + ", ".join([marks] * len(rows))
        )
        for row in rows:
            params += row
    sql.append(_HEAD_UPDATE)
    params += head
    if commit:
        sql.append("COMMIT")
    cursor.execute(";\n".join(sql), params)
    return True


_TAKE_PENDING = (
    "DELETE FROM ledger_pendingevent WHERE id IN "
    "(SELECT id FROM ledger_pendingevent ORDER BY id LIMIT %s{lock}) "
    "RETURNING id, kind, actor, subjects, event, created_at"
)


def pending_exists(cursor: Any) -> bool:
    """Whether any committed event is queued: the integrator's look before it locks."""
    cursor.execute("SELECT 1 FROM ledger_pendingevent LIMIT 1")
    return cursor.fetchone() is not None


def pending_take(cursor: Any, max_batch: int) -> list[tuple]:
    """Remove the first `max_batch` committed pending events and return them in id order."""
    # Only committed rows are visible; on PostgreSQL, SKIP LOCKED passes over any row
    # another session holds rather than waiting for it.
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    cursor.execute(_TAKE_PENDING.format(lock=lock), [max_batch])
    rows = sorted(cursor.fetchall(), key=itemgetter(0))
    if connection.vendor != "postgresql":
        rows = [(*row[:5], db_time(row[5])) for row in rows]
    return rows


_BEGIN_LOCK_TAKE = (
    "BEGIN; "
    "SELECT 1 FROM ledger_treehead WHERE id = 1 FOR UPDATE; "
    "WITH taken AS ("
    "DELETE FROM ledger_pendingevent WHERE id IN "
    "(SELECT id FROM ledger_pendingevent ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
    "RETURNING id, kind, actor, subjects, event, created_at) "
    "SELECT id, kind, actor, subjects, event, created_at, NULL, NULL, NULL FROM taken "
    "UNION ALL "
    "SELECT NULL, NULL, NULL, NULL, NULL, NULL, size, root, chain FROM ledger_treehead WHERE id = 1"
)


def pending_take_head_locked(
    cursor: Any, max_batch: int
) -> tuple[tuple[int, bytes, bytes] | None, list[tuple]]:
    """On PostgreSQL, outside any transaction: begin one, lock the head, take up to
    `max_batch` pending events and read the head, in one round trip.

    Returns ((size, root, chain) or None when there is no head row yet, the events in id
    order). The transaction stays open: the caller ends it (`batch_write(commit=True)`, or
    ROLLBACK). The same statements as `tree_head_lock` then `pending_take`, in the same
    order; the head is read by the statement after the lock, so (READ COMMITTED) it is the
    one the last integrator committed."""
    cursor.execute(_BEGIN_LOCK_TAKE, [max_batch])
    head = None
    rows = []
    for row in cursor.fetchall():
        if row[0] is None:
            head = (row[6], bytes(row[7]), bytes(row[8]))
        else:
            rows.append(row[:6])
    rows.sort(key=itemgetter(0))
    return head, rows
