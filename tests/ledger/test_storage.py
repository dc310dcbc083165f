"""Bulk inserts: the binary COPY of (bigint..., bytea) rows stores exactly what it is given."""

import pytest
from django.db import connection

from ledger import storage

pytestmark = pytest.mark.django_db

ROWS = [
    (1, 0, b""),
    (1, 1, bytes(range(256))),  # every byte value, NUL, tab, newline and backslash included
    (1, 2**53, b"\\x00\t\n\\N"),
    (2**62, 3, b'{"type":"certificate.exported"}' * 100),
]


@pytest.mark.parametrize("insert", [storage.bulk_insert_ints_bytes, storage.bulk_insert])
def test_rows_of_bigints_and_bytes_round_trip(insert):
    insert("federation_mirroredchunk", ("peer_id", "seq", "events"), ROWS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT peer_id, seq, events FROM federation_mirroredchunk ORDER BY seq")
        stored = [(peer, seq, bytes(event)) for peer, seq, event in cursor.fetchall()]
    assert stored == sorted(ROWS, key=lambda row: row[1])


def test_nothing_to_insert_is_a_no_op():
    storage.bulk_insert_ints_bytes("federation_mirroredchunk", ("peer_id", "seq", "events"), [])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM federation_mirroredchunk")
        assert cursor.fetchone()[0] == 0
