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

from django.db import connection

from ledger.merkle import NodeKey

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
    """Insert rows of bigint columns followed by one bytea column, fast.

    On PostgreSQL, COPY in the binary format: neither side hex-encodes the bytes (for
    mirrored entries, 3x faster than text COPY, measured). Elsewhere `bulk_insert`.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        bulk_insert(table, columns, rows)
        return
    ints = len(columns) - 1
    # Per row: field count, then (length 8, value) per bigint, then the bytea's length.
    head = struct.Struct("!h" + "iq" * ints + "i").pack
    parts = [_PGCOPY_HEADER]
    append = parts.append
    for *numbers, data in rows:
        data = bytes(data)
        fields = [len(columns)]
        for value in numbers:
            fields += (8, value)
        append(head(*fields, len(data)))
        append(data)
    append(_PGCOPY_TRAILER)
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)",
            io.BytesIO(b"".join(parts)),
        )
