"""C2SP tlog-tiles: tile paths, entry bundles, and checking a whole log read from tiles.

Standard library only (the checkpoint is checked by the caller with `note`). The layout
(c2sp.org/tlog-tiles):

    checkpoint                      the signed checkpoint note
    tile/<L>/<N>[.p/<W>]            hash tiles: tile N of level L holds the hashes of the
                                    subtrees of 256**L leaves starting at (N*256 + i)*256**L
    tile/entries/<N>[.p/<W>]        entry bundles: leaves N*256 .. N*256+255, each a
                                    big-endian uint16 length and the entry's bytes

`<N>` is written in 3-digit groups, all but the last prefixed by x (1234067 ->
x001/x234/067); `.p/<W>` is a partial tile of W (1..255) hashes or entries, the rightmost
of its level at a checkpoint's size. A GridProof entry longer than 65,535 bytes cannot be
length-prefixed in a bundle: the bundle holding one is served instead at
`tile/entries-u32/<N>[.p/<W>]`, each entry a big-endian uint32 length and its bytes (the
spec's "different format at a different URL"); hash tiles are unaffected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

TILE_WIDTH = 256
HASH_SIZE = 32
MAX_ENTRY_BYTES = 0xFFFF
"""The largest entry a standard entry bundle can hold (uint16 length prefix)."""

ENTRIES = -1
"""The level of entry bundles in `tile_path`."""
ENTRIES_U32 = -2
"""The level of GridProof's uint32-prefixed bundles (entries over MAX_ENTRY_BYTES)."""

_LEVEL_NAMES = {ENTRIES: "entries", ENTRIES_U32: "entries-u32"}


class TilesError(Exception):
    """A tile is missing, malformed, or does not match the entries or the checkpoint."""


def encode_index(n: int) -> str:
    """Tile index N as path elements: 1234067 -> 'x001/x234/067'."""
    if n < 0:
        raise ValueError(f"invalid tile index {n}")
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def tile_path(level: int, n: int, width: int = TILE_WIDTH) -> str:
    """The path of tile N of `level` (ENTRIES for entry bundles), full or of `width`."""
    if not 0 < width <= TILE_WIDTH:
        raise ValueError(f"invalid tile width {width}")
    name = _LEVEL_NAMES.get(level)
    if name is None:
        if not 0 <= level <= 63:
            raise ValueError(f"invalid tile level {level}")
        name = str(level)
    path = f"tile/{name}/{encode_index(n)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def level_tiles(size: int, level: int) -> tuple[int, int]:
    """(full tiles, width of the partial tile or 0) of a level (hash level >= 0) at `size`."""
    count = size >> (8 * level)
    return count // TILE_WIDTH, count % TILE_WIDTH


def tiles_for_size(size: int) -> list[tuple[int, int, int]]:
    """Every hash tile of a tree of `size` leaves, (level, index, width), level by level."""
    tiles: list[tuple[int, int, int]] = []
    level = 0
    while size >> (8 * level):
        full, partial = level_tiles(size, level)
        tiles.extend((level, n, TILE_WIDTH) for n in range(full))
        if partial:
            tiles.append((level, full, partial))
        level += 1
    return tiles


def encode_bundle(entries: list[bytes]) -> tuple[int, bytes]:
    """(level, bytes) of an entry bundle: ENTRIES with uint16 lengths, or ENTRIES_U32 when
    an entry is longer than MAX_ENTRY_BYTES."""
    wide = any(len(entry) > MAX_ENTRY_BYTES for entry in entries)
    prefix = 4 if wide else 2
    parts = []
    for entry in entries:
        parts.append(len(entry).to_bytes(prefix, "big"))
        parts.append(entry)
    return (ENTRIES_U32 if wide else ENTRIES), b"".join(parts)


def decode_bundle(data: bytes, width: int, prefix: int = 2, where: str = "bundle") -> list[bytes]:
    """The `width` entries of a bundle with `prefix`-byte lengths; TilesError if malformed."""
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + prefix > len(data):
            raise TilesError(f"{where}: truncated length prefix at byte {at}")
        length = int.from_bytes(data[at : at + prefix], "big")
        at += prefix
        if at + length > len(data):
            raise TilesError(f"{where}: entry {len(entries)} is truncated")
        entries.append(data[at : at + length])
        at += length
    if len(entries) != width:
        raise TilesError(f"{where}: {len(entries)} entries, expected {width}")
    return entries


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tile_root(hashes: list[bytes]) -> bytes:
    """MTH of a full tile's 256 hashes (a complete subtree of height 8)."""
    while len(hashes) > 1:
        hashes = [_node(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


class _Frontier:
    """The right edge of a growing RFC 9162 tree: its root without keeping the leaves."""

    def __init__(self) -> None:
        self.size = 0
        self.hashes: list[bytes] = []

    def append(self, h: bytes) -> None:
        index = self.size
        while index & 1:
            h = _node(self.hashes.pop(), h)
            index >>= 1
        self.hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return hashlib.sha256(b"").digest()
        result = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            result = _node(h, result)
        return result


def split_hashes(data: bytes, width: int, where: str) -> list[bytes]:
    if len(data) != width * HASH_SIZE:
        raise TilesError(f"{where}: {len(data)} bytes, expected {width} hashes")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


Getter = Callable[[str], "bytes | None"]
"""Reads one path of the log (relative to its prefix); None when it does not exist."""


def _hash_tile(get: Getter, size: int, level: int, n: int) -> list[bytes]:
    """The hashes of tile N of `level` as a tree of `size` has it (partial or full)."""
    full, partial = level_tiles(size, level)
    width = TILE_WIDTH if n < full else partial
    path = tile_path(level, n, width)
    data = get(path)
    if data is None and width < TILE_WIDTH:
        whole = get(tile_path(level, n))
        data = None if whole is None else whole[: width * HASH_SIZE]
    if data is None:
        raise TilesError(f"{path} is missing")
    return split_hashes(data, width, path)


def root_from_tiles(get: Getter, size: int) -> bytes:
    """The root of a tree of `size` leaves from its hash tiles alone (a few tiles per level):
    each complete subtree of [0, size) is a hash of a tile, or the MTH of 2**r consecutive
    hashes of one tile."""
    if size == 0:
        return hashlib.sha256(b"").digest()
    nodes: list[bytes] = []
    start = 0
    while start < size:
        height = (size - start).bit_length() - 1
        level, r = divmod(height, 8)
        first = (start >> height) << r  # its first hash at tile level `level`
        n, i = divmod(first, TILE_WIDTH)
        nodes.append(tile_root(_hash_tile(get, size, level, n)[i : i + (1 << r)]))
        start += 1 << height
    result = nodes[-1]
    for h in reversed(nodes[:-1]):
        result = _node(h, result)
    return result


@dataclass
class TilesResult:
    size: int
    root: bytes
    tiles: int
    bundles: int


def read_bundle(get: Getter, n: int, width: int) -> list[bytes]:
    """The entries of bundle N (of `width`), standard or GridProof's uint32 form; a partial
    bundle the log has since completed is read as the full bundle's first `width` entries."""
    tries = [(width, ENTRIES, 2), (width, ENTRIES_U32, 4)]
    if width < TILE_WIDTH:
        tries += [(TILE_WIDTH, ENTRIES, 2), (TILE_WIDTH, ENTRIES_U32, 4)]
    for tile_width, level, prefix in tries:
        path = tile_path(level, n, tile_width)
        data = get(path)
        if data is not None:
            return decode_bundle(data, tile_width, prefix, path)[:width]
    raise TilesError(f"{tile_path(ENTRIES, n, width)} is missing")


def iter_entries(get: Getter, size: int) -> Iterator[tuple[int, bytes]]:
    """(seq, entry) of every entry of a log of `size` read from its bundles (unchecked)."""
    full, partial = level_tiles(size, 0)
    for n in range(full + (1 if partial else 0)):
        width = TILE_WIDTH if n < full else partial
        for i, entry in enumerate(read_bundle(get, n, width)):
            yield n * TILE_WIDTH + i, entry


def check_tiles(
    get: Getter, size: int, root: bytes, on_entry: Callable[[int, bytes], None] | None = None
) -> TilesResult:
    """Rebuild the tree of `size` leaves from the entry bundles, check every hash tile the
    size needs against them, and the root against `root` (the checkpoint's).

    Every level-0 tile must hold the leaf hashes of its bundle's entries; every hash of a
    level-L tile must be the MTH of the full level-(L-1) tile below it. Raises TilesError
    naming the first tile that is missing or does not match.
    """
    frontier = _Frontier()
    roots: dict[int, list[bytes]] = {}  # MTH of each full tile, per level, in order
    count = bundles = 0
    for level, n, width in tiles_for_size(size):
        path = tile_path(level, n, width)
        data = get(path)
        if data is None and width < TILE_WIDTH:
            # A client may fall back to the full tile once the log has completed it.
            full = get(tile_path(level, n))
            data = None if full is None else full[: width * HASH_SIZE]
        if data is None:
            raise TilesError(f"{path} is missing")
        hashes = split_hashes(data, width, path)
        if level == 0:
            entries = read_bundle(get, n, width)
            bundles += 1
            for i, entry in enumerate(entries):
                seq = n * TILE_WIDTH + i
                leaf = leaf_hash(entry)
                if leaf != hashes[i]:
                    raise TilesError(
                        f"entry {seq} does not hash to hash {i} of {path}: "
                        "the entry or the tile was changed"
                    )
                frontier.append(leaf)
                if on_entry is not None:
                    on_entry(seq, entry)
        else:
            expected = roots.get(level - 1, [])[n * TILE_WIDTH : n * TILE_WIDTH + width]
            for i, h in enumerate(hashes):
                if i >= len(expected) or h != expected[i]:
                    below = tile_path(level - 1, n * TILE_WIDTH + i)
                    raise TilesError(f"hash {i} of {path} is not the hash of {below}")
        if width == TILE_WIDTH:
            roots.setdefault(level, []).append(tile_root(hashes))
        count += 1
    if frontier.size != size:
        raise TilesError(f"the bundles hold {frontier.size} entries, the checkpoint {size}")
    computed = frontier.root()
    if computed != root:
        raise TilesError("the root rebuilt from the tiles is not the checkpoint's root")
    return TilesResult(size, computed, count, bundles)
