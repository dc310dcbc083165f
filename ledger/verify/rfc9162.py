"""RFC 9162 section 2.1 Merkle tree hashing and proof verification (standard library only).

Edge rules are the strict ones encoded in the shared test vectors:

- a consistency check from size 0 is rejected, even to size 0 (it proves nothing);
- equal sizes need an empty proof and byte-equal roots;
- leaf, root and proof hashes must be exactly 32 bytes (except the equal-size
  consistency case, which only compares the two roots as given).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()
"""MTH({}): the root of the empty tree, SHA-256 of the empty string."""


class ProofError(ValueError):
    """An inclusion or consistency proof does not verify, or its inputs are malformed."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """MTH of a whole tree given its leaf hashes, in memory (reference; O(n) memory).

    Pairs neighbours level by level; an odd last node is carried up unchanged, which
    yields exactly RFC 9162's left-balanced tree (split at the largest power of two).
    """
    level = list(hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _check_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _check_hash(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray | memoryview) else "?"
        raise ProofError(f"{name} must be {HASH_SIZE} bytes, got {size}")
    return bytes(value)


def _check_proof(proof: Sequence[bytes] | None) -> list[bytes]:
    if proof is None:
        return []
    return [_check_hash(f"proof[{i}]", h) for i, h in enumerate(proof)]


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Split the inclusion proof of `index` in a tree of `size` into (inner, border) lengths.

    `inner` hashes sit below the point where the leaf's path leaves the tree's right
    edge; the `border` hashes are the left siblings along that edge (one per set bit).
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(h, seed) if (index >> i) & 1 else node_hash(seed, h)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _match(name: str, got: bytes, want: bytes) -> None:
    if not hmac.compare_digest(got, want):
        raise ProofError(f"calculated {name} {got.hex()} does not match expected {want.hex()}")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof (raises ProofError if its shape is wrong)."""
    index = _check_int("index", index)
    size = _check_int("size", size)
    if index >= size:
        raise ProofError(f"index {index} is beyond tree size {size}")
    leaf = _check_hash("leaf hash", leaf_hash)
    hashes = _check_proof(proof)
    inner, border = _decompose(index, size)
    if len(hashes) != inner + border:
        raise ProofError(f"wrong proof size {len(hashes)}, want {inner + border}")
    result = _chain_inner(leaf, hashes[:inner], index)
    return _chain_border_right(result, hashes[inner:])


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`."""
    want = _check_hash("root", root)
    _match("root", root_from_inclusion_proof(leaf_hash, index, size, proof), want)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (size2, root2) extends the tree (size1, root1)."""
    size1 = _check_int("size1", size1)
    size2 = _check_int("size2", size2)
    proof = [] if proof is None else list(proof)
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 == 0:
        raise ProofError("consistency from an empty tree (size1 = 0) proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError(f"sizes are equal but the proof has {len(proof)} hashes")
        if not isinstance(root1, bytes) or not isinstance(root2, bytes) or root1 != root2:
            raise ProofError("sizes are equal but the roots differ")
        return
    if not proof:
        raise ProofError("empty consistency proof for different sizes")
    root1 = _check_hash("root1", root1)
    root2 = _check_hash("root2", root2)
    hashes = _check_proof(proof)

    inner, border = _decompose(size1 - 1, size2)
    # The subtree of size 2**shift ending at size1 is shared by both trees; its hash
    # is root1 itself when size1 is a power of two, otherwise the first proof element.
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = hashes[0], 1
    if len(hashes) != start + inner + border:
        raise ProofError(f"wrong proof size {len(hashes)}, want {start + inner + border}")
    hashes = hashes[start:]
    mask = (size1 - 1) >> shift

    hash1 = _chain_inner_right(seed, hashes[:inner], mask)
    hash1 = _chain_border_right(hash1, hashes[inner:])
    _match("root1", hash1, root1)

    hash2 = _chain_inner(seed, hashes[:inner], mask)
    hash2 = _chain_border_right(hash2, hashes[inner:])
    _match("root2", hash2, root2)
