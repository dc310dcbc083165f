"""Migration 0005 moves mirrored entries into chunks and back, losing nothing."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from federation.protocol import parse_bundle

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("federation", "0004_mirror_index_state")]
AFTER = [("federation", "0005_mirrored_chunks")]


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def event(peer_id: int, seq: int) -> bytes:
    return b'{"peer":%d,"seq":%d}' % (peer_id, seq) * (1 + seq % 3)


def test_entries_become_chunks_and_back():
    # given mirrored entries of two peers
    apps = migrate(BEFORE)
    Entry = apps.get_model("federation", "MirroredEntry")
    rows = [(1, seq) for seq in range(77)] + [(2, seq) for seq in range(5)]
    Entry.objects.bulk_create(
        [Entry(peer_id=peer_id, seq=seq, event=event(peer_id, seq)) for peer_id, seq in rows]
    )
    try:
        # when migrating forward
        apps = migrate(AFTER)
        Chunk = apps.get_model("federation", "MirroredChunk")
        chunks = list(
            Chunk.objects.order_by("peer_id", "seq").values_list("peer_id", "seq", "events")
        )

        # then every entry is in a chunk of up to 16 that does not cross a multiple of 16
        assert [(p, s, len(parse_bundle(bytes(e), 16))) for p, s, e in chunks] == [
            (1, 0, 16), (1, 16, 16), (1, 32, 16), (1, 48, 16), (1, 64, 13), (2, 0, 5),
        ]  # fmt: skip
        stored = {
            (peer_id, seq + offset): entry
            for peer_id, seq, events in chunks
            for offset, entry in enumerate(parse_bundle(bytes(events), 16))
        }
        assert stored == {(p, s): event(p, s) for p, s in rows}

        # and when migrating back, the entries are rows again, unchanged
        apps = migrate(BEFORE)
        Entry = apps.get_model("federation", "MirroredEntry")
        back = Entry.objects.order_by().values_list("peer_id", "seq", "event")
        assert {(p, s): bytes(e) for p, s, e in back} == {(p, s): event(p, s) for p, s in rows}
    finally:
        migrate(AFTER)


def test_chunks_stay_append_only():
    # given a stored chunk
    from django.db import IntegrityError, InternalError, transaction

    from federation.models import MirroredChunk

    MirroredChunk.objects.create(peer_id=1, seq=0, events=b"\0\0\0\1x")
    # then neither an update nor a delete goes through
    for change in (
        lambda: MirroredChunk.objects.filter(peer_id=1).update(events=b""),
        lambda: MirroredChunk.objects.filter(peer_id=1).delete(),
    ):
        with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
            change()
