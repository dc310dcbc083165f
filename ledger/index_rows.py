"""The subject map's rows: what ledger/index.py reads and writes, with PostgreSQL fast paths.

An update at 10^6 entries touches most of the 65,536 buckets, so what it costs is moving
records between Python and the database. On PostgreSQL:

- the new records go over once, in binary COPY, into a temporary table, and the server
  copies them into the versioned leaves and upserts them into the current records;
- the server hashes each changed bucket itself (`sha256` over the bucket's records in key
  order, `string_agg`), so the buckets' other records never come to Python;
- the subjects' previous records are read with one array parameter per chunk.

Elsewhere (SQLite) the same steps run as plain statements and the buckets hash in Python.
Both give the same bytes: ledger/verify/subject_map.py defines them, and the tests compare
the database's map with the one recomputed in memory.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction

from ledger import storage
from ledger.verify.subject_map import bucket_hash, entry_subjects, record_bytes

CHUNK = 2000  # subjects or buckets per query off PostgreSQL (SQLite's variable limit)
PG_CHUNK = 50_000  # subjects per array parameter on PostgreSQL
ENTRY_BATCH = 20_000  # entries read per query

# (subject, version, key, bucket, count, chain): a record as of index size `version`
Record = tuple[str, int, bytes, int, int, bytes]
_RECORD_COLUMNS = ("subject", "version", "key", "bucket", "count", "chain")
_RECORD_FORMATS = "tqbiqb"
_STAGE = "ledger_index_stage"
_STAGE_CREATE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS ledger_index_stage (subject varchar(128), "
    "version bigint, key bytea, bucket integer, count bigint, chain bytea) "
    "ON COMMIT DELETE ROWS"
)
_STAGE_TO_LEAVES = (
    "INSERT INTO ledger_subjectindexleaf (subject, version, key, bucket, count, chain) "
    "SELECT subject, version, key, bucket, count, chain FROM ledger_index_stage"
)
_STAGE_TO_CURRENT = (
    "INSERT INTO ledger_subjectindexcurrent (subject, key, bucket, count, chain) "
    "SELECT subject, key, bucket, count, chain FROM ledger_index_stage "
    "ON CONFLICT (subject) DO UPDATE SET count = EXCLUDED.count, chain = EXCLUDED.chain"
)
_STAGE_EMPTY = "TRUNCATE ledger_index_stage"


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def touches(start: int, end: int) -> dict[str, list[bytes]]:
    """For each subject of entries [start, end), the leaf hashes of its entries in order."""
    found: dict[str, list[bytes]] = defaultdict(list)
    for lo in range(start, end, ENTRY_BATCH):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT event, leaf_hash FROM ledger_ledgerentry "
                "WHERE seq >= %s AND seq < %s ORDER BY seq",
                [lo, min(end, lo + ENTRY_BATCH)],
            )
            for event, leaf in cursor.fetchall():
                leaf = bytes(leaf)
                for subject in entry_subjects(bytes(event)):
                    found[subject].append(leaf)
    return found


def current_of_subjects(subjects: Sequence[str]) -> dict[str, tuple[int, bytes]]:
    """The newest (count, chain) of each of `subjects` that has one."""
    found: dict[str, tuple[int, bytes]] = {}
    with connection.cursor() as cursor:
        if _postgres():
            for chunk in chunks(subjects, PG_CHUNK):
                cursor.execute(
                    "SELECT subject, count, chain FROM ledger_subjectindexcurrent "
                    "WHERE subject = ANY(%s)",
                    [list(chunk)],
                )
                found.update({s: (count, bytes(chain)) for s, count, chain in cursor.fetchall()})
            return found
        for chunk in chunks(subjects, CHUNK):
            cursor.execute(
                "SELECT subject, count, chain FROM ledger_subjectindexcurrent "
                "WHERE subject IN (SELECT value FROM json_each(%s))",
                [json.dumps(list(chunk))],
            )
            found.update({s: (count, bytes(chain)) for s, count, chain in cursor.fetchall()})
    return found


def store_records(records: Sequence[Record]) -> None:
    """Append `records` to the versioned leaves and make them the subjects' current ones."""
    if not records:
        return
    if not _postgres():
        storage.bulk_insert("ledger_subjectindexleaf", _RECORD_COLUMNS, records)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ledger_subjectindexcurrent (subject, key, bucket, count, chain) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (subject) DO UPDATE "
                "SET count = excluded.count, chain = excluded.chain",
                [(s, key, bucket, count, chain) for s, _v, key, bucket, count, chain in records],
            )
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_STAGE_CREATE)
        cursor.execute(_STAGE_EMPTY)
        storage.bulk_insert_binary(_STAGE, _RECORD_COLUMNS, _RECORD_FORMATS, records)
        cursor.execute(_STAGE_TO_LEAVES)
        cursor.execute(_STAGE_TO_CURRENT)
        cursor.execute(_STAGE_EMPTY)


# The bucket hash of ledger/verify/subject_map.py, by the server: 0x02, then each record
# (key, count as 8 bytes big-endian, chain) in key order; bytea orders bytewise, as Python.
_PG_BUCKET_HASHES = (
    "SELECT bucket, sha256(decode('02', 'hex') || "
    "string_agg(key || int8send(count) || chain, ''::bytea ORDER BY key)) "
    "FROM ledger_subjectindexcurrent WHERE bucket = ANY(%s) GROUP BY bucket"
)


def bucket_hashes(buckets: Sequence[int]) -> dict[int, bytes]:
    """The hash of each of `buckets` over its current records."""
    with connection.cursor() as cursor:
        if _postgres():
            cursor.execute(_PG_BUCKET_HASHES, [list(buckets)])
            return {bucket: bytes(h) for bucket, h in cursor.fetchall()}
        records: dict[int, list[tuple[bytes, int, bytes]]] = defaultdict(list)
        for chunk in chunks(buckets, CHUNK):
            cursor.execute(
                "SELECT bucket, key, count, chain FROM ledger_subjectindexcurrent "
                "WHERE bucket IN (SELECT value FROM json_each(%s))",
                [json.dumps(list(chunk))],
            )
            for bucket, key, count, chain in cursor.fetchall():
                records[bucket].append((bytes(key), count, bytes(chain)))
    return {
        bucket: bucket_hash(record_bytes(*row) for row in sorted(records[bucket]))
        for bucket in buckets
    }


def store_nodes(rows: Sequence[tuple[int, int, int, bytes]]) -> None:
    """Append bucket-tree nodes (level, position, version, hash)."""
    storage.bulk_insert_binary(
        "ledger_subjectindexnode", ("level", "position", "version", "hash"), "hiqb", rows
    )
