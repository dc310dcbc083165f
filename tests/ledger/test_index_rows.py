"""The subject map's row access (ledger/index_rows.py): the database does what the pure
map (ledger/verify/subject_map.py) defines, on PostgreSQL's fast paths and SQLite's alike.

These pin the byte-level agreements the end-to-end map tests can miss by luck: with a
few subjects, buckets rarely hold more than one record, so the order of a bucket's
records and the width of its counts never show there.
"""

import hashlib
import random

import pytest
from django.db import connection

from ledger import index_rows, storage
from ledger.models import SubjectIndexLatest, SubjectIndexRecord
from ledger.verify.subject_map import bucket_hash, record_bytes

pytestmark = pytest.mark.django_db


def _record(bucket: int, tail: int, count: int) -> tuple[bytes, int, str, int, bytes]:
    key = bucket.to_bytes(2, "big") + hashlib.sha256(tail.to_bytes(4, "big")).digest()[2:]
    chain = hashlib.sha256(b"chain" + key).digest()
    return (key, 7, f"test:é{bucket}/{tail}", count, chain)


def test_a_bucket_of_many_records_hashes_as_the_pure_map_says():
    rng = random.Random(9162)
    records = [
        _record(bucket, tail, rng.choice([1, 255, 256, 2**31, 2**40 + 3]))
        for bucket in (0, 1, 65535)
        for tail in rng.sample(range(10**6), 12)
    ]
    # the bucket's lowest and highest possible keys, and neighbours of the buckets hashed
    records += [
        (index_rows.bucket_range(65535)[1], 7, "test:top", 3, bytes(32)),
        (index_rows.bucket_range(1)[0], 7, "test:bottom", 4, bytes(32)),
        (index_rows.bucket_range(2)[0], 7, "test:next", 5, bytes(32)),
        (index_rows.bucket_range(65534)[1], 7, "test:previous", 6, bytes(32)),
    ]
    rng.shuffle(records)  # stored in no particular order; hashed in key order
    index_rows.store_records(records)

    hashes = index_rows.bucket_hashes([0, 1, 65535, 12345])

    assert set(hashes) == {0, 1, 65535}  # 12345 holds nothing
    for bucket in (0, 1, 65535):
        mine = sorted(
            (k, c, h) for k, _v, _s, c, h in records if k[:2] == bucket.to_bytes(2, "big")
        )
        assert len(mine) == 12 + (bucket != 0)
        assert hashes[bucket] == bucket_hash(record_bytes(*row) for row in mine)


def test_storing_records_appends_a_version_and_replaces_the_latest_one():
    first = _record(3, 1, 1)
    index_rows.store_records([first])
    newer = (first[0], 9, first[2], 2, hashlib.sha256(b"next").digest())
    index_rows.store_records([newer])

    versions = SubjectIndexRecord.objects.filter(subject=first[2]).order_by("version")
    assert [(record.version, record.count) for record in versions] == [(7, 1), (9, 2)]
    latest = SubjectIndexLatest.objects.get(key=first[0])
    assert (latest.count, bytes(latest.chain)) == (2, newer[4])
    assert index_rows.latest_of_keys([first[0], bytes(32)]) == {first[0]: (2, newer[4])}


def test_binary_copy_stores_every_column_type_exactly():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE copy_probe (a smallint, b integer, c bigint, d bytea, e text)"
        )
    rows = [
        (-32768, -(2**31), -(2**63), b"", "tab\tnew\nline\\é"),
        (32767, 2**31 - 1, 2**63 - 1, bytes(range(256)), ""),
        (0, 7, 8, memoryview(b"\x00\xff"), "ü" * 40),
    ]
    storage.bulk_insert_binary("copy_probe", ("a", "b", "c", "d", "e"), "hiqbt", rows)
    with connection.cursor() as cursor:
        cursor.execute("SELECT a, b, c, d, e FROM copy_probe ORDER BY c")
        stored = [(a, b, c, bytes(d), e) for a, b, c, d, e in cursor.fetchall()]
    assert stored == sorted(
        ((a, b, c, bytes(d), e) for a, b, c, d, e in rows), key=lambda row: row[2]
    )


def test_a_bucket_at_an_index_size_holds_each_key_at_its_newest_version_by_then():
    from ledger.index import _records

    early, late, elsewhere = _record(5, 1, 1), _record(5, 2, 1), _record(6, 3, 1)
    index_rows.store_records([early, elsewhere])
    index_rows.store_records([(early[0], 9, early[2], 2, bytes(32)), (*late[:1], 9, *late[2:])])
    index_rows.store_records([(early[0], 11, early[2], 3, bytes(32))])

    assert _records(5, 6) == []
    assert _records(5, 7) == [(early[0], 1, early[4])]
    assert _records(5, 10) == sorted([(early[0], 2, bytes(32)), (late[0], 1, late[4])])
    assert _records(5, 11) == sorted([(early[0], 3, bytes(32)), (late[0], 1, late[4])])
    assert _records(6, 11) == [(elsewhere[0], 1, elsewhere[4])]
