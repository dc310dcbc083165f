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
from ledger.models import SubjectIndexCurrent, SubjectIndexLeaf
from ledger.verify.subject_map import bucket_hash, record_bytes

pytestmark = pytest.mark.django_db


def _record(bucket: int, tail: int, count: int) -> tuple[str, int, bytes, int, int, bytes]:
    key = bucket.to_bytes(2, "big") + hashlib.sha256(tail.to_bytes(4, "big")).digest()[2:]
    chain = hashlib.sha256(b"chain" + key).digest()
    return (f"test:é{bucket}/{tail}", 7, key, bucket, count, chain)


def test_a_bucket_of_many_records_hashes_as_the_pure_map_says():
    rng = random.Random(9162)
    records = [
        _record(bucket, tail, rng.choice([1, 255, 256, 2**31, 2**40 + 3]))
        for bucket in (0, 1, 65535)
        for tail in rng.sample(range(10**6), 12)
    ]
    rng.shuffle(records)  # stored in no particular order; hashed in key order
    index_rows.store_records(records)

    hashes = index_rows.bucket_hashes([0, 1, 65535])

    for bucket in (0, 1, 65535):
        mine = sorted((k, c, h) for _s, _v, k, b, c, h in records if b == bucket)
        assert hashes[bucket] == bucket_hash(record_bytes(*row) for row in mine)


def test_storing_records_appends_a_version_and_replaces_the_current_one():
    first = _record(3, 1, 1)
    index_rows.store_records([first])
    newer = (first[0], 9, first[2], first[3], 2, hashlib.sha256(b"next").digest())
    index_rows.store_records([newer])

    versions = SubjectIndexLeaf.objects.filter(subject=first[0]).order_by("version")
    assert [(leaf.version, leaf.count) for leaf in versions] == [(7, 1), (9, 2)]
    current = SubjectIndexCurrent.objects.get(subject=first[0])
    assert (current.count, bytes(current.chain)) == (2, newer[5])
    assert index_rows.current_of_subjects([first[0], "test:none"]) == {first[0]: (2, newer[5])}


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
