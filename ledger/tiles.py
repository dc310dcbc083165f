"""The log as C2SP tlog-tiles static files in LEDGER_TILES_DIR (empty: off).

`tiles_write` brings the directory up to the latest signed checkpoint: the entry bundles
and level-0 tiles of the new entries (leaf hashes recomputed from the event bytes and
compared with the stored ones), the higher hash tiles from the stored tree nodes (level
8L of the tree is level L of the tiles), then, once the root rebuilt from the files equals
the checkpoint's, the `checkpoint` file. Checkpoints signed since the last run get
their partial tiles too (`write_skipped_partials`): the spec asks for the partial tiles of
every checkpoint's size, so that a client holding an older checkpoint can read it. The
checkpoint file is written last, so whatever size it names, every tile it needs is
already there; the size it names is also where the next run starts.

Why at checkpoints and not after every integrated batch: the spec asks for partial tiles
at checkpoint sizes only, and tiles past the latest checkpoint prove nothing to anyone.
Writing per batch would write (and later delete) a partial tile per batch, and it would
put file I/O on the integrator's path. It runs in its own task (`ledger_tiles_write_task`,
started after each new checkpoint and swept every CHECKPOINT_INTERVAL_SECONDS), outside
any transaction that writes; a failure is logged and the next run retries from the
checkpoint file's size. Integration never waits for it.

Files: each written to a temporary name in its directory, fsynced, then renamed over the
target, readable by a static web server (0644); the directories renamed into are fsynced
before the checkpoint file is replaced, so a crash cannot leave a checkpoint whose tiles
are lost. A full tile or bundle never changes: one
that exists is left alone when equal and stops the writer when different (a directory of
another log, or a database restored behind it). A partial tile is kept until the full
tile of its index exists, then its `.p/` directory is deleted (as the spec allows). One
writer at a time per directory (an exclusive `flock` on `.writer.lock`; a second one
returns at once).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings

from ledger import storage
from ledger.errors import LedgerCorrupted
from ledger.models import Checkpoint, LedgerEntry
from ledger.verify.tiles import (
    ENTRIES,
    ENTRIES_U32,
    HASH_SIZE,
    TILE_WIDTH,
    encode_bundle,
    leaf_hash,
    read_bundle,
    root_from_tiles,
    tile_path,
)

log = logging.getLogger(__name__)

CHUNK_TILES = 64
"""Level-0 tiles (of 256 entries) read from the database per query."""
LOCK_NAME = ".writer.lock"


class TilesWriteError(Exception):
    """The directory cannot be brought to the checkpoint without changing a full tile."""


def tiles_write(*, directory: str | os.PathLike | None = None) -> int | None:
    """Bring the tiles directory up to the latest checkpoint; return the size it now
    serves, or None when tiles are off or another writer holds the directory."""
    directory = settings.LEDGER_TILES_DIR if directory is None else directory
    if not directory:
        return None
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    with _writer_lock(root) as held:
        if not held:
            return None
        checkpoint = Checkpoint.objects.order_by("-size").first()
        written = written_size(root)
        if checkpoint is None:
            return written
        _check_same_log(root, written)
        if checkpoint.size < written:
            raise TilesWriteError(
                f"{root} serves size {written}, the database's latest checkpoint is "
                f"{checkpoint.size}: a directory of another log, or a database restored behind it"
            )
        if checkpoint.size > written:
            write_range(root, written, checkpoint.size)
            skipped = Checkpoint.objects.filter(size__gt=written, size__lt=checkpoint.size)
            write_skipped_partials(root, skipped.values_list("size", flat=True), checkpoint.size)
            rebuilt = root_from_tiles(_reader(root), checkpoint.size)
            if rebuilt != bytes(checkpoint.root):
                raise TilesWriteError(
                    f"the tiles of size {checkpoint.size} do not give the checkpoint's root"
                )
        path = root / "checkpoint"
        note = checkpoint.note.encode("utf-8")
        if not path.exists() or path.read_bytes() != note:
            _sync_directories()
            _atomic_write(path, note)
            _sync_directories()
        return checkpoint.size


def tiles_write_logged() -> int | None:
    """`tiles_write`, with any failure logged instead of raised (the task and the sweep:
    the next run retries)."""
    try:
        return tiles_write()
    except Exception:
        log.exception("writing the ledger's tiles to %s failed", settings.LEDGER_TILES_DIR)
        return None


def written_size(root: Path) -> int:
    """The size of the checkpoint file in `root` (0 without one); TilesWriteError if it is
    another log's."""
    try:
        text = (root / "checkpoint").read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    lines = text.split("\n")
    if len(lines) < 3 or not lines[1].isdigit():
        raise TilesWriteError(f"{root / 'checkpoint'} is not a checkpoint note")
    if lines[0] != settings.REGISTRY_ORIGIN:
        origin = settings.REGISTRY_ORIGIN
        raise TilesWriteError(f"{root / 'checkpoint'} is of the log {lines[0]!r}, not {origin!r}")
    return int(lines[1])


def _check_same_log(root: Path, written: int) -> None:
    """The checkpoint file's root must be the database's at its size."""
    if not written:
        return
    ours = Checkpoint.objects.filter(size=written).values_list("root", flat=True).first()
    lines = (root / "checkpoint").read_text(encoding="utf-8").split("\n")
    if ours is None or lines[2] != base64.b64encode(bytes(ours)).decode("ascii"):
        raise TilesWriteError(
            f"{root / 'checkpoint'} (size {written}) is not a checkpoint of this database's "
            "log: a directory of another log, or a database restored behind it"
        )


def write_range(root: Path, old: int, new: int) -> None:
    """Write every bundle and hash tile that differs between sizes `old` and `new`."""
    first = old // TILE_WIDTH
    last = (new - 1) // TILE_WIDTH
    for chunk in range(first, last + 1, CHUNK_TILES):
        _write_level0(root, chunk, min(chunk + CHUNK_TILES, last + 1), new)
    level = 1
    while (count := new >> (8 * level)) > (old >> (8 * level)):
        first = (old >> (8 * level)) // TILE_WIDTH
        for n in range(first, (count - 1) // TILE_WIDTH + 1):
            end = min(count, (n + 1) * TILE_WIDTH)
            keys = [(8 * level, i) for i in range(n * TILE_WIDTH, end)]
            nodes = storage.fetch_nodes(keys)
            if len(nodes) != len(keys):
                raise LedgerCorrupted(f"tree nodes of tile {level}/{n} are missing")
            _write_tile(root, level, n, b"".join(nodes[key] for key in keys))
        level += 1


def write_skipped_partials(root: Path, sizes: Iterable[int], latest: int) -> None:
    """The partial tiles of checkpoints signed between two runs (the spec asks for the
    partial tiles of every checkpoint's size), where the full tile does not exist yet.

    Each is a prefix of the latest size's partial tile of its level, already written, so
    this reads no database rows; at most 255 files per level, however many checkpoints.
    """
    sizes = sorted(set(sizes))
    level = 0
    while count := latest >> (8 * level):
        n, width = divmod(count, TILE_WIDTH)
        widths = {c % TILE_WIDTH for s in sizes if (c := s >> (8 * level)) // TILE_WIDTH == n}
        widths -= {0, width}
        if width and widths:
            hashes = (root / tile_path(level, n, width)).read_bytes()
            for w in sorted(widths):
                _atomic_write(root / tile_path(level, n, w), hashes[: w * HASH_SIZE])
            if level == 0:
                entries = read_bundle(_reader(root), n, width)
                for w in sorted(widths):
                    bundle_level, data = encode_bundle(entries[:w])
                    _atomic_write(root / tile_path(bundle_level, n, w), data)
        level += 1


def _write_level0(root: Path, first: int, stop: int, size: int) -> None:
    """Bundles and level-0 tiles [first, stop) of a tree of `size`, from one query."""
    rows = (
        LedgerEntry.objects.filter(seq__gte=first * TILE_WIDTH, seq__lt=stop * TILE_WIDTH)
        .filter(seq__lt=size)
        .order_by("seq")
        .values_list("seq", "event", "leaf_hash")
    )
    events: list[bytes] = []
    leaves: list[bytes] = []
    for seq, event, stored in rows.iterator(chunk_size=4096):
        if seq != first * TILE_WIDTH + len(events):
            raise LedgerCorrupted(f"entry {first * TILE_WIDTH + len(events)} is missing")
        event = bytes(event)
        leaf = leaf_hash(event)
        if leaf != bytes(stored):
            raise LedgerCorrupted(f"entry {seq}'s stored leaf hash is not the hash of its event")
        events.append(event)
        leaves.append(leaf)
    if len(events) != min(size, stop * TILE_WIDTH) - first * TILE_WIDTH:
        raise LedgerCorrupted(f"entries up to {min(size, stop * TILE_WIDTH)} are missing")
    for n in range(first, stop):
        lo = (n - first) * TILE_WIDTH
        bundle = events[lo : lo + TILE_WIDTH]
        level, data = encode_bundle(bundle)
        _write_tile(root, level, n, data, width=len(bundle))
        _write_tile(root, 0, n, b"".join(leaves[lo : lo + TILE_WIDTH]))


def _write_tile(root: Path, level: int, n: int, data: bytes, width: int | None = None) -> None:
    """Write tile N of `level` (full: immutable; partial: replaced), and drop the partial
    tiles of N once it is full."""
    if width is None:
        width = len(data) // HASH_SIZE
    path = root / tile_path(level, n, width)
    if width < TILE_WIDTH:
        _atomic_write(path, data)
        return
    if path.exists():
        if path.read_bytes() != data:
            raise TilesWriteError(f"{path} exists with other contents: full tiles never change")
    else:
        _atomic_write(path, data)
    levels = (ENTRIES, ENTRIES_U32) if level in (ENTRIES, ENTRIES_U32) else (level,)
    for each in levels:
        partials = root / (tile_path(each, n, 1).rsplit("/", 1)[0])  # ".../<N>.p"
        if partials.is_dir():
            shutil.rmtree(partials, ignore_errors=True)


_unsynced_directories: set[Path] = set()
"""Directories renamed into since the last sync (only the lock holder writes it)."""


def _sync_directories() -> None:
    """fsync the directories renamed into, so that the tiles' names are on disk before
    the checkpoint that needs them is."""
    while _unsynced_directories:
        directory = _unsynced_directories.pop()
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue  # a partial tiles' directory deleted since
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The file's directory, and its parent, where a new directory (N.p/, xNNN/) was named.
    _unsynced_directories.update((path.parent, path.parent.parent))
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temporary, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _reader(root: Path):
    def get(path: str) -> bytes | None:
        try:
            return (root / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    return get


@contextlib.contextmanager
def _writer_lock(root: Path) -> Iterator[bool]:
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
