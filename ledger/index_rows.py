"""The subject map's rows: what ledger/index.py reads and writes, with PostgreSQL fast paths.

An update at 10^6 entries touches most of the 65,536 buckets, so what it costs is moving
records between Python and the database. On PostgreSQL:

- the new records go over once, in binary COPY, into a temporary table, and the server
  copies them into the versioned records and upserts them into the latest ones (both
  keyed by the subject's key alone, so one index each; the latest are updated in place);
- the server hashes each changed bucket itself (`sha256` over the bucket's records in key
  order, `string_agg`), so the buckets' other records never come to Python;
- the subjects' previous records are read by key, with one array parameter per chunk.

Elsewhere (SQLite) the same steps run as plain statements and the buckets hash in Python.
Both give the same bytes: ledger/verify/subject_map.py defines them, and the tests compare
the database's map with the one recomputed in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction

from ledger import storage
from ledger.verify.subject_map import bucket_hash, entry_subjects, record_bytes

CHUNK = 2000  # keys or buckets per query off PostgreSQL (SQLite's variable limit)
PG_CHUNK = 50_000  # keys per array parameter on PostgreSQL
ENTRY_BATCH = 20_000  # entries read per query

# (key, version, subject, count, chain): a subject's record as of index size `version`
Record = tuple[bytes, int, str, int, bytes]
_RECORD_COLUMNS = ("key", "version", "subject", "count", "chain")
_RECORD_FORMATS = "bqtqb"
_STAGE = "ledger_index_stage"
_STAGE_CREATE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS ledger_index_stage (key bytea, version bigint, "
    "subject varchar(128), count bigint, chain bytea) ON COMMIT DELETE ROWS"
)
# In key order: both tables are keyed by key, so each index page is visited once, in
# order, instead of at random (half the time at 10^6 subjects, measured).
_STAGE_TO_RECORDS = (
    "INSERT INTO ledger_subjectindexrecord (key, version, subject, count, chain) "
    "SELECT key, version, subject, count, chain FROM ledger_index_stage ORDER BY key"
)
_STAGE_TO_LATEST = (
    "INSERT INTO ledger_subjectindexlatest (key, count, chain) "
    "SELECT key, count, chain FROM ledger_index_stage ORDER BY key "
    "ON CONFLICT (key) DO UPDATE SET count = EXCLUDED.count, chain = EXCLUDED.chain"
)
_STAGE_EMPTY = "TRUNCATE ledger_index_stage"


def bucket_range(bucket: int) -> tuple[bytes, bytes]:
    """The lowest and highest 32-byte key in `bucket` (its first two bytes)."""
    prefix = bucket.to_bytes(2, "big")
    return prefix + bytes(30), prefix + b"\xff" * 30


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


def latest_of_keys(keys: Sequence[bytes]) -> dict[bytes, tuple[int, bytes]]:
    """The newest (count, chain) of each of the subject `keys` that has one."""
    found: dict[bytes, tuple[int, bytes]] = {}
    with connection.cursor() as cursor:
        if _postgres():
            for chunk in chunks(keys, PG_CHUNK):
                cursor.execute(
                    "SELECT key, count, chain FROM ledger_subjectindexlatest "
                    "WHERE key = ANY(%s::bytea[])",
                    [list(chunk)],
                )
                found.update({bytes(k): (c, bytes(h)) for k, c, h in cursor.fetchall()})
            return found
        for chunk in chunks(keys, CHUNK):
            marks = ", ".join(["%s"] * len(chunk))  # placeholders only: the keys are params
            cursor.execute(
                f"SELECT key, count, chain FROM ledger_subjectindexlatest WHERE key IN ({marks})",  # noqa: S608
                list(chunk),
            )
            found.update({bytes(k): (c, bytes(h)) for k, c, h in cursor.fetchall()})
    return found


def store_records(records: Sequence[Record]) -> None:
    """Append `records` to the versioned records and make them the subjects' latest ones."""
    if not records:
        return
    if not _postgres():
        storage.bulk_insert("ledger_subjectindexrecord", _RECORD_COLUMNS, records)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ledger_subjectindexlatest (key, count, chain) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET count = excluded.count, chain = excluded.chain",
                [(key, count, chain) for key, _v, _s, count, chain in records],
            )
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_STAGE_CREATE)
        cursor.execute(_STAGE_EMPTY)
        storage.bulk_insert_binary(_STAGE, _RECORD_COLUMNS, _RECORD_FORMATS, records)
        cursor.execute(_STAGE_TO_RECORDS)
        cursor.execute(_STAGE_TO_LATEST)
        cursor.execute(_STAGE_EMPTY)


# The bucket hash of ledger/verify/subject_map.py, by the server: 0x02, then each record
# (key, count as 8 bytes big-endian, chain) in key order; bytea orders bytewise, as Python.
# A bucket is a key range of the primary key (keys are 32 bytes; the range's ends are the
# bucket's two bytes followed by 30 zero or 30 0xff bytes), so each bucket is one short
# index range scan and the map is never sorted whole.
_PG_BUCKET_HASHES = (
    "SELECT b, (SELECT sha256(decode('02', 'hex') || "
    "string_agg(key || int8send(count) || chain, ''::bytea ORDER BY key)) "
    "FROM ledger_subjectindexlatest WHERE key >= substring(int4send(b) from 3) "
    "AND key <= substring(int4send(b) from 3) || decode(repeat('ff', 30), 'hex')) "
    "FROM unnest(%s::integer[]) AS b"
)


def bucket_hashes(buckets: Sequence[int]) -> dict[int, bytes]:
    """The hash of each of `buckets` over its latest records (buckets with none are left out)."""
    with connection.cursor() as cursor:
        if _postgres():
            cursor.execute(_PG_BUCKET_HASHES, [list(buckets)])
            return {bucket: bytes(h) for bucket, h in cursor.fetchall() if h is not None}
        found: dict[int, bytes] = {}
        for bucket in buckets:
            cursor.execute(
                "SELECT key, count, chain FROM ledger_subjectindexlatest "
                "WHERE key >= %s AND key <= %s ORDER BY key",
                list(bucket_range(bucket)),
            )
            rows = [(bytes(k), c, bytes(h)) for k, c, h in cursor.fetchall()]
            if rows:
                found[bucket] = bucket_hash(record_bytes(*row) for row in rows)
    return found


def store_nodes(rows: Sequence[tuple[int, int, int, bytes]]) -> None:
    """Append bucket-tree nodes (level, position, version, hash), best in key order: the
    rows then reach the primary key's pages in order rather than at random."""
    storage.bulk_insert_binary(
        "ledger_subjectindexnode", ("level", "position", "version", "hash"), "hiqb", rows
    )
