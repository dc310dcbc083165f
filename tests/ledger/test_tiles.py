"""The log as C2SP tlog-tiles files (ledger/tiles.py), read back by the independent
tlog-scales package and by our verifier's tile reader."""

import fcntl
import os
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from tlog_scales import tiles as scales_tiles
from tlog_scales.backend import LocalBackend
from tlog_scales.reader import TilesReader

from ledger import tasks
from ledger.models import Checkpoint, LedgerEntry
from ledger.services import checkpoint_create, ledger_append
from ledger.tiles import TilesWriteError, tiles_write
from ledger.verify.rfc9162 import verify_inclusion
from ledger.verify.tiles import (
    ENTRIES,
    ENTRIES_U32,
    check_tiles,
    encode_index,
    root_from_tiles,
    tile_path,
    tiles_for_size,
)
from tests.conftest import requires_postgres
from tests.ledger.factories import append_events, integrate_all


def grow_and_sign(count: int, start: int = 0) -> Checkpoint:
    append_events(count, start=start)
    integrate_all()
    checkpoint, _ = checkpoint_create()
    return checkpoint


def files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def reader_get(root: Path):
    def get(path: str):
        target = root / path
        return target.read_bytes() if target.is_file() else None

    return get


def expected_files(size: int) -> set[str]:
    """Every tile a tree of `size` needs, paths made by tlog-scales' own encoder."""
    paths = {"checkpoint"}
    for level in range(-1, 8):
        scales_level = 0 if level == -1 else level
        complete, partial = scales_tiles.level_tiles(size, scales_level)
        if complete == 0 and partial == 0:
            break
        for n in range(complete):
            paths.add("/".join(scales_tiles.tile_path(level, n)))
        if partial:
            paths.add("/".join(scales_tiles.tile_path(level, complete, partial)))
    return paths


@pytest.mark.django_db
def test_tlog_scales_reads_our_tiles_entries_hashes_and_root(tmp_path, settings):
    # given: a log across two level-0 tiles and a partial third, signed at 600
    settings.LEDGER_TILES_DIR = str(tmp_path)
    checkpoint = grow_and_sign(600)

    # when
    size = tiles_write()

    # then: tlog-scales reads the same checkpoint, entries and root
    assert size == 600
    reader = TilesReader(LocalBackend(tmp_path))
    cp = reader.get_checkpoint()
    assert (cp.origin, cp.size, cp.root_hash) == (
        settings.REGISTRY_ORIGIN,
        600,
        bytes(checkpoint.root),
    )
    assert reader.calculate_root_hash() == bytes(checkpoint.root)
    events = [bytes(e) for e in LedgerEntry.objects.order_by("seq").values_list("event", flat=True)]
    assert [reader.get_entry(i) for i in range(600)] == events
    # its inclusion proofs, computed from our hash tiles, verify against our root
    for seq in (0, 255, 256, 511, 599):
        proof = reader.get_inclusion_proof(seq, 600)
        leaf = scales_tiles.leaf_hash(events[seq])
        verify_inclusion(leaf, seq, 600, proof.node_hashes, bytes(checkpoint.root))
    # and the files are exactly the ones tlog-scales' path encoder names
    assert files(tmp_path) == expected_files(600)


@pytest.mark.django_db
def test_partial_tiles_stay_for_checkpoint_sizes_until_the_full_tile_exists(tmp_path, settings):
    # given
    settings.LEDGER_TILES_DIR = str(tmp_path)
    grow_and_sign(100)
    tiles_write()
    assert (tmp_path / "tile/0/000.p/100").is_file()
    grow_and_sign(50, start=100)
    tiles_write()

    # then: both checkpoint sizes' partials are served
    assert (tmp_path / "tile/0/000.p/100").is_file()
    assert (tmp_path / "tile/entries/000.p/150").is_file()

    # when the tile fills
    checkpoint = grow_and_sign(200, start=150)
    tiles_write()

    # then the partials of tile 0 are gone, the full tile and the next partial are there
    assert not (tmp_path / "tile/0/000.p").exists()
    assert not (tmp_path / "tile/entries/000.p").exists()
    assert files(tmp_path) == expected_files(350)
    reader = TilesReader(LocalBackend(tmp_path))
    reader.get_checkpoint()
    assert reader.calculate_root_hash() == bytes(checkpoint.root)
    result = check_tiles(reader_get(tmp_path), 350, bytes(checkpoint.root))
    assert (result.size, result.bundles) == (350, 2)


def test_tile_paths_match_tlog_scales():
    for level, n, width in [
        (0, 0, 256),
        (0, 5, 17),
        (1, 999, 256),
        (2, 1000, 1),
        (-1, 1234067, 256),
        (-1, 1234067, 255),
        (5, 10**9 + 7, 3),
    ]:
        ours = tile_path(level, n, width)
        theirs = "/".join(scales_tiles.tile_path(level, n, 0 if width == 256 else width))
        assert ours == theirs
    assert encode_index(1234067) == "x001/x234/067"


def test_the_spec_example_of_a_tree_of_70000():
    tiles = tiles_for_size(70_000)

    assert [t for t in tiles if t[0] == 0 and t[2] == 256] == [(0, n, 256) for n in range(273)]
    assert [t for t in tiles if t[2] < 256] == [(0, 273, 112), (1, 1, 17), (2, 0, 1)]
    assert (1, 0, 256) in tiles
    assert len(tiles) == 273 + 1 + 1 + 1 + 1


@pytest.mark.django_db
def test_an_entry_over_65535_bytes_goes_to_a_uint32_bundle_at_its_own_url(tmp_path, settings):
    # given: an event too long for a uint16 length prefix (a year of hourly periods is ~1 MB)
    settings.LEDGER_TILES_DIR = str(tmp_path)
    append_events(3)
    with transaction.atomic():
        ledger_append(
            kind="test.happened",
            actor="system:test",
            subject=("bundle", 1),
            data={"blob": "x" * 70_000},
        )
    append_events(2, start=3)
    integrate_all()
    checkpoint, _ = checkpoint_create()

    # when
    tiles_write()

    # then: no standard bundle for it, a uint32 one instead; the hash tiles are unaffected
    assert not (tmp_path / tile_path(ENTRIES, 0, 6)).exists()
    assert (tmp_path / tile_path(ENTRIES_U32, 0, 6)).is_file()
    reader = TilesReader(LocalBackend(tmp_path))
    reader.get_checkpoint()
    assert reader.calculate_root_hash() == bytes(checkpoint.root)
    seen = {}
    check_tiles(reader_get(tmp_path), 6, bytes(checkpoint.root), seen.__setitem__)
    assert len(seen[3]) > 70_000
    assert seen[3] == bytes(LedgerEntry.objects.get(seq=3).event)


@pytest.mark.django_db
def test_a_second_run_changes_nothing_and_the_root_is_that_of_the_tiles(tmp_path, settings):
    # given
    settings.LEDGER_TILES_DIR = str(tmp_path)
    checkpoint = grow_and_sign(300)
    tiles_write()
    stamps = {p: os.stat(tmp_path / p).st_mtime_ns for p in files(tmp_path)}

    # when
    size = tiles_write()

    # then
    assert size == 300
    assert {p: os.stat(tmp_path / p).st_mtime_ns for p in files(tmp_path)} == stamps
    assert root_from_tiles(reader_get(tmp_path), 300) == bytes(checkpoint.root)


@pytest.mark.django_db
def test_a_full_tile_with_other_contents_stops_the_writer_before_the_checkpoint(tmp_path, settings):
    # given: the first full tile exists with other bytes (another log's, or tampered)
    settings.LEDGER_TILES_DIR = str(tmp_path)
    grow_and_sign(300)
    (tmp_path / "tile/0").mkdir(parents=True)
    (tmp_path / "tile/0/000").write_bytes(b"\x01" * 8192)

    # when / then
    with pytest.raises(TilesWriteError, match="full tiles never change"):
        tiles_write()
    assert (tmp_path / "tile/0/000").read_bytes() == b"\x01" * 8192
    assert not (tmp_path / "checkpoint").exists()


@pytest.mark.django_db
def test_a_directory_of_another_log_is_refused(tmp_path, settings):
    settings.LEDGER_TILES_DIR = str(tmp_path)
    grow_and_sign(5)
    (tmp_path / "checkpoint").write_text("other.example/log\n3\nAAAA\n\n— x\n")

    with pytest.raises(TilesWriteError, match=r"other\.example/log"):
        tiles_write()
    assert not (tmp_path / "tile").exists()


@pytest.mark.django_db
def test_tiles_off_writes_nothing(tmp_path, settings):
    settings.LEDGER_TILES_DIR = ""
    grow_and_sign(5)

    assert tiles_write() is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_the_checkpoint_task_writes_tiles_and_a_failure_is_logged_not_raised(
    tmp_path, settings, caplog
):
    # given: eager Celery (no broker), so the task the checkpoint task starts runs here
    settings.LEDGER_TILES_DIR = str(tmp_path)
    append_events(10)
    integrate_all()

    # when
    size = tasks.checkpoint_create_task()

    # then
    assert size == 10
    assert (tmp_path / "checkpoint").read_text() == Checkpoint.objects.get(size=10).note

    # given: a directory that cannot be written (a file stands where it should be)
    blocker = tmp_path / "blocked"
    blocker.write_text("")
    settings.LEDGER_TILES_DIR = str(blocker)
    append_events(5, start=10)
    integrate_all()

    # when: the checkpoint is still signed, the tiles task logs its failure
    assert tasks.checkpoint_create_task() == 15
    assert tasks.ledger_tiles_write_task() is None
    assert "writing the ledger's tiles" in caplog.text


@pytest.mark.django_db
def test_the_command_writes_into_a_directory(tmp_path, settings, capsys):
    settings.LEDGER_TILES_DIR = ""
    grow_and_sign(7)

    call_command("ledger_tiles", "--dir", str(tmp_path))

    assert "tree size 7" in capsys.readouterr().out
    assert files(tmp_path) == expected_files(7)
    with pytest.raises(CommandError, match="LEDGER_TILES_DIR"):
        call_command("ledger_tiles")

    # --check reads everything back, and names a tampered tile
    call_command("ledger_tiles", "--dir", str(tmp_path), "--check")
    assert "rebuild the root of the checkpoint of size 7" in capsys.readouterr().out
    flip = bytearray((tmp_path / "tile/0/000.p/7").read_bytes())
    flip[0] ^= 1
    (tmp_path / "tile/0/000.p/7").write_bytes(bytes(flip))
    with pytest.raises(CommandError, match=r"entry 0 does not hash to hash 0 of tile/0/000\.p/7"):
        call_command("ledger_tiles", "--dir", str(tmp_path), "--check")


@pytest.mark.django_db
def test_the_registry_serves_the_tiles_under_tlog(tmp_path, settings, client):
    # given
    settings.LEDGER_TILES_DIR = str(tmp_path)
    checkpoint = grow_and_sign(300)
    tiles_write()

    # when
    note = client.get("/tlog/checkpoint")
    full = client.get("/tlog/tile/0/000")
    partial = client.get("/tlog/tile/entries/001.p/44")

    # then
    assert note.status_code == 200
    assert note["Content-Type"] == "text/plain; charset=utf-8"
    assert note["Cache-Control"] == "no-cache"
    assert b"".join(note.streaming_content).decode() == checkpoint.note
    assert full["Cache-Control"] == "public, max-age=31536000, immutable"
    assert full["Content-Type"] == "application/octet-stream"
    assert b"".join(full.streaming_content) == (tmp_path / "tile/0/000").read_bytes()
    assert b"".join(partial.streaming_content) == (tmp_path / "tile/entries/001.p/44").read_bytes()
    for missing in ("tile/0/009", "tile/0/../../etc/passwd", ".writer.lock", "tile/64/000", "tile"):
        assert client.get(f"/tlog/{missing}").status_code == 404, missing
    assert client.post("/tlog/checkpoint").status_code == 405

    # when tiles are off
    settings.LEDGER_TILES_DIR = ""
    assert client.get("/tlog/checkpoint").status_code == 404


@pytest.mark.django_db
def test_a_second_writer_finds_the_directory_locked_and_writes_nothing(tmp_path, settings):
    # given: another process is writing the directory
    settings.LEDGER_TILES_DIR = str(tmp_path)
    grow_and_sign(10)
    fd = os.open(tmp_path / ".writer.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        # when
        size = tiles_write()
    finally:
        os.close(fd)

    # then
    assert size is None
    assert not (tmp_path / "checkpoint").exists()
    assert tiles_write() == 10


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_writers_racing_on_postgres_leave_one_valid_directory(tmp_path, settings):
    # given: checkpoints keep coming while four threads write the same directory
    settings.LEDGER_TILES_DIR = str(tmp_path)
    grow_and_sign(700)
    barrier = threading.Barrier(4)
    sizes, errors = [], []

    def writer():
        try:
            barrier.wait()
            for _ in range(5):
                sizes.append(tiles_write())
        except Exception as exc:  # pragma: no cover - the assertion shows it
            errors.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    checkpoint = grow_and_sign(300, start=700)
    for thread in threads:
        thread.join()
    tiles_write()

    # then
    assert errors == []
    assert {s for s in sizes if s is not None} <= {700, 1000}
    assert files(tmp_path) >= expected_files(1000)
    result = check_tiles(reader_get(tmp_path), 1000, bytes(checkpoint.root))
    assert result.size == 1000


@pytest.mark.django_db
def test_a_checkpoint_file_of_another_root_is_refused(tmp_path, settings):
    # given: a directory at size 5 whose checkpoint names another root
    settings.LEDGER_TILES_DIR = str(tmp_path)
    grow_and_sign(5)
    tiles_write()
    note = (tmp_path / "checkpoint").read_text().split("\n")
    note[2] = "A" * 43 + "="
    (tmp_path / "checkpoint").write_text("\n".join(note))
    grow_and_sign(5, start=5)

    # when / then
    with pytest.raises(TilesWriteError, match="not a checkpoint of this database's log"):
        tiles_write()
    assert not (tmp_path / "tile/0/000.p/10").exists()


@pytest.mark.django_db
def test_checkpoints_signed_between_two_runs_get_their_partial_tiles(tmp_path, settings):
    # given: checkpoints at 300, 350 and 400 while the writer last ran at 100
    settings.LEDGER_TILES_DIR = str(tmp_path)
    grow_and_sign(100)
    tiles_write()
    skipped = [grow_and_sign(200, start=100), grow_and_sign(50, start=300)]
    latest = grow_and_sign(50, start=350)

    # when
    tiles_write()

    # then: every checkpoint size's tiles are served; tlog-scales and our reader read them
    for checkpoint in [*skipped, latest]:
        size, root = checkpoint.size, bytes(checkpoint.root)
        assert files(tmp_path) >= expected_files(size) - {"checkpoint"}, size
        reader = TilesReader(LocalBackend(tmp_path))
        reader.set_size(size)
        assert reader.calculate_root_hash() == root
        assert check_tiles(reader_get(tmp_path), size, root).size == size
    assert (tmp_path / "tile/entries/001.p/44").is_file()
    assert (tmp_path / "tile/entries/001.p/94").is_file()
