"""RFC 9162 Merkle tree for the ledger, server side (pure Python, no Django).

Hashing and verification come from `ledger.verify.rfc9162` (re-exported here); this
module adds what a log needs to *produce* roots and proofs from stored hashes.

Storage model: node (level, index) covers leaves [index * 2**level, (index + 1) * 2**level)
and is stored once it is complete (all its leaves exist); level 0 nodes are leaf hashes.
Every root and every proof element is the MTH of a range that decomposes into a few such
complete nodes, so a root, an inclusion proof or a consistency proof needs O(log n) stored
hashes, fetched in one query:

    ranges = inclusion_proof_ranges(index, size)     # or consistency_proof_ranges(a, b)
    keys = nodes_needed(ranges)                      # {(level, index), ...}
    nodes = {(level, index): hash for the stored rows matching keys}
    proof = range_hashes(ranges, nodes)

The root of a tree of size n is range_hash(0, n, nodes) (see `root_ranges`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ledger.verify.rfc9162 import (
    EMPTY_ROOT,
    HASH_SIZE,
    ProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "NodeKey",
    "ProofError",
    "consistency_proof",
    "consistency_proof_ranges",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "nodes_needed",
    "range_hash",
    "range_hashes",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "root_ranges",
    "subtree_nodes",
    "verify_consistency",
    "verify_inclusion",
]

NodeKey = tuple[int, int]
"""(level, index) of a complete, aligned subtree."""


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """node_hash(h0, node_hash(h1, ... node_hash(h[-2], h[-1])))."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


def subtree_nodes(start: int, end: int) -> list[NodeKey]:
    """Decompose leaves [start, end) into maximal complete aligned subtrees, left to right.

    Each step takes the largest subtree that starts at `start` (aligned) and fits before
    `end`. For [0, n) this is one node per set bit of n, largest first; for the ranges an
    RFC 9162 proof uses (see `range_hash`) it is the node list whose right fold is the MTH.
    """
    if not 0 <= start <= end:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    nodes: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def _check_mth_range(start: int, end: int) -> None:
    # MTH(D[start:end]) is the right fold of the decomposition only when start is a
    # multiple of the smallest power of two >= end - start: true of every complete
    # subtree, every prefix [0, n) and every right-edge range a proof can contain.
    size = end - start
    if not 0 <= start <= end or start % (1 << (size - 1).bit_length() if size else 1):
        raise ValueError(f"[{start}, {end}) is not a subtree range of an RFC 9162 tree")


def range_hash(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH of leaves [start, end) from stored complete-subtree hashes.

    Valid for prefixes [0, n), complete aligned subtrees and the right-edge ranges that
    appear in RFC 9162 proofs; other ranges raise ValueError. [0, 0) is EMPTY_ROOT.
    Raises KeyError naming the missing node if `nodes` lacks one.
    """
    _check_mth_range(start, end)
    keys = subtree_nodes(start, end)
    try:
        hashes = [nodes[key] for key in keys]
    except KeyError as exc:
        raise KeyError(f"missing tree node (level, index) = {exc.args[0]}") from None
    return _fold_right(hashes)


def range_hashes(ranges: Iterable[tuple[int, int]], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """[range_hash(start, end, nodes) for each range]: a proof from its ranges."""
    return [range_hash(start, end, nodes) for start, end in ranges]


def nodes_needed(ranges: Iterable[tuple[int, int]]) -> set[NodeKey]:
    """Every (level, index) that `range_hash` reads for these ranges (one query's worth)."""
    needed: set[NodeKey] = set()
    for start, end in ranges:
        needed.update(subtree_nodes(start, end))
    return needed


def root_ranges(size: int) -> list[tuple[int, int]]:
    """The ranges whose hash is the root of a tree of `size` leaves: just [(0, size)]."""
    if size < 0:
        raise ValueError(f"invalid tree size {size}")
    return [(0, size)]


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 inclusion proof (PATH) of leaf `index` in a tree of `size`, as leaf ranges.

    Proof order: from the leaf's sibling up to the child of the root.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def consistency_proof_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """RFC 9162 consistency proof (SUBPROOF) from size1 to size2, as leaf ranges.

    Requires 0 < size1 <= size2; equal sizes give the empty proof.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    ranges: list[tuple[int, int]] = []
    lo, hi, whole_old_tree = 0, size2, True
    while size1 - lo != hi - lo:
        mid = lo + _split(hi - lo)
        if size1 <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo, whole_old_tree = mid, False
    if not whole_old_tree:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


class CompactRange:
    """The right edge of a growing tree: hashes of subtree_nodes(0, size), left to right.

    An integrator resumes from stored nodes with CompactRange(size, frontier) and
    appends leaf hashes; each append returns the nodes it completed, to be stored.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"invalid tree size {size!r}")
        hashes = [bytes(h) for h in frontier]
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"frontier hashes must be {HASH_SIZE} bytes")
        self._size = size
        self._frontier = hashes

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> list[bytes]:
        """Hashes of subtree_nodes(0, size), largest subtree first (a copy)."""
        return list(self._frontier)

    def frontier_nodes(self) -> list[NodeKey]:
        """The (level, index) of each frontier hash."""
        return subtree_nodes(0, self._size)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return every node that became complete, the leaf first."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
        index = self._size
        h = bytes(leaf_hash)
        completed = [(0, index, h)]
        frontier = self._frontier
        level = 0
        # Each trailing 1 bit of the index is a complete left sibling on the frontier.
        while index & 1:
            h = node_hash(frontier.pop(), h)
            index >>= 1
            level += 1
            completed.append((level, index, h))
        frontier.append(h)
        self._size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """append() each leaf hash in turn; return all completed nodes in order."""
        completed: list[tuple[int, int, bytes]] = []
        for h in leaf_hashes:
            completed.extend(self.append(h))
        return completed

    def root(self) -> bytes:
        """MTH of the tree so far (EMPTY_ROOT when empty)."""
        return _fold_right(self._frontier)

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


def _leaves(size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    hashes = list(leaf_hashes)
    if len(hashes) < size:
        raise ValueError(f"tree size {size} but only {len(hashes)} leaf hashes")
    return hashes[:size]


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Reference inclusion proof from all leaf hashes (RFC 9162 2.1.3.1, literally)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")

    def path(m: int, d: list[bytes]) -> list[bytes]:
        if len(d) == 1:
            return []
        k = _split(len(d))
        if m < k:
            return [*path(m, d[:k]), root_from_leaf_hashes(d[k:])]
        return [*path(m - k, d[k:]), root_from_leaf_hashes(d[:k])]

    return path(index, _leaves(size, leaf_hashes))


def consistency_proof(size1: int, size2: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Reference consistency proof from all leaf hashes (RFC 9162 2.1.4.1, literally)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")

    def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
        if m == len(d):
            return [] if b else [root_from_leaf_hashes(d)]
        k = _split(len(d))
        if m <= k:
            return [*subproof(m, d[:k], b), root_from_leaf_hashes(d[k:])]
        return [*subproof(m - k, d[k:], False), root_from_leaf_hashes(d[:k])]

    return subproof(size1, _leaves(size2, leaf_hashes), True)
