"""RFC 9162 hashing and proofs: published vectors, tlog-scales, and properties."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    consistency_proof,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_ranges,
    leaf_hash,
    node_hash,
    nodes_needed,
    range_hash,
    range_hashes,
    root_from_leaf_hashes,
    root_ranges,
    subtree_nodes,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "testvectors"
RFC9162 = VECTORS / "rfc9162"
MISSING = f"shared test vectors not found at {VECTORS} (clone shared/ beside the repository)"


def vector_files(sub: str) -> list:
    folder = RFC9162 / sub
    if not folder.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="missing")]
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json"))
    return [pytest.param(name, id=name) for name in files]


def load(sub: str, name: str) -> dict:
    return json.loads((RFC9162 / sub / name).read_text())


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def b64_list(values: list[str] | None) -> list[bytes]:
    return [b64(v) for v in values or []]


def build(leaves: list[bytes]) -> tuple[CompactRange, dict[tuple[int, int], bytes]]:
    """Append leaf hashes; keep every completed node as a storage layer would."""
    tree = CompactRange()
    nodes: dict[tuple[int, int], bytes] = {}
    for h in leaves:
        for level, index, value in tree.append(h):
            assert (level, index) not in nodes
            nodes[(level, index)] = value
    return tree, nodes


def leaves_for(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"event {salt}/{i}".encode()) for i in range(n)]


# ---------------------------------------------------------------- tree.json


@pytest.fixture(scope="module")
def tree_vectors() -> dict:
    path = RFC9162 / "tree.json"
    if not path.is_file():
        pytest.skip(MISSING)
    return json.loads(path.read_text())


def test_hasher_vectors(tree_vectors):
    hasher = tree_vectors["hasher"]
    assert bytes.fromhex(hasher["empty_root"]) == EMPTY_ROOT
    assert bytes.fromhex(hasher["leaf_of_empty_input"]) == leaf_hash(b"")
    assert bytes.fromhex(hasher["leaf_of_ascii_L123456"]) == leaf_hash(b"L123456")
    assert bytes.fromhex(hasher["node_of_ascii_N123_and_N456"]) == node_hash(b"N123", b"N456")


def test_roots_by_size(tree_vectors):
    leaves = [leaf_hash(bytes.fromhex(x)) for x in tree_vectors["leaf_inputs_hex"]]
    want = [bytes.fromhex(x) for x in tree_vectors["root_by_tree_size_hex"]]
    assert len(want) == len(leaves) + 1
    for size, root in enumerate(want):
        tree, nodes = build(leaves[:size])
        assert root_from_leaf_hashes(leaves[:size]) == root
        assert tree.root() == root
        assert range_hash(0, size, nodes) == root
        resumed = CompactRange(size, tree.frontier)
        assert resumed.root() == root


def test_node_hashes(tree_vectors):
    leaves = [leaf_hash(bytes.fromhex(x)) for x in tree_vectors["leaf_inputs_hex"]]
    _, nodes = build(leaves)
    want = {
        (level, index): bytes.fromhex(h)
        for level, row in enumerate(tree_vectors["node_hashes_by_level_hex"])
        for index, h in enumerate(row)
    }
    assert nodes == want


# ---------------------------------------------------------------- inclusion / consistency probes


def _tree_leaves() -> list[bytes]:
    data = json.loads((RFC9162 / "tree.json").read_text())
    return [leaf_hash(bytes.fromhex(x)) for x in data["leaf_inputs_hex"]]


@pytest.mark.parametrize("name", vector_files("inclusion"))
def test_inclusion_probe(name):
    probe = load("inclusion", name)
    args = (
        b64(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        b64_list(probe["proof"]),
        b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
        return
    verify_inclusion(*args)
    leaf, index, size, proof, root = args
    leaves = _tree_leaves()
    if (
        size <= len(leaves)
        and leaves[index] == leaf
        and root_from_leaf_hashes(leaves[:size]) == root
    ):
        # The probe is about the published 8-leaf tree: we must produce that exact proof.
        _, nodes = build(leaves[:size])
        assert range_hashes(inclusion_proof_ranges(index, size), nodes) == proof
        assert inclusion_proof(index, size, leaves) == proof


@pytest.mark.parametrize("name", vector_files("consistency"))
def test_consistency_probe(name):
    probe = load("consistency", name)
    args = (
        probe["size1"],
        probe["size2"],
        b64_list(probe["proof"]),
        b64(probe["root1"]),
        b64(probe["root2"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
        return
    verify_consistency(*args)
    size1, size2, proof, _, root2 = args
    leaves = _tree_leaves()
    if size2 <= len(leaves) and root_from_leaf_hashes(leaves[:size2]) == root2:
        _, nodes = build(leaves[:size2])
        assert range_hashes(consistency_proof_ranges(size1, size2), nodes) == proof
        assert consistency_proof(size1, size2, leaves) == proof


def test_hash_lengths_are_enforced():
    leaves = leaves_for(4)
    _, nodes = build(leaves)
    root2 = range_hash(0, 2, nodes)
    # Splicing bytes between the leaf and its sibling reproduces the same SHA-256 input.
    spliced = (leaves[0] + leaves[1][:8], 0, 2, [leaves[1][8:]], root2)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(*spliced)
    with pytest.raises(ProofError, match="leaf hash must be 32 bytes"):
        verify_inclusion(leaves[0][:31], 0, 1, [], leaves[0])
    with pytest.raises(ProofError, match="root must be 32 bytes"):
        verify_inclusion(leaves[0], 0, 1, [], leaves[0] + b"\x00")
    with pytest.raises(ProofError, match=r"proof\[0\] must be 32 bytes"):
        verify_inclusion(leaves[0], 0, 2, [leaves[1] + b"\x00"], root2)
    with pytest.raises(ProofError, match="root1 must be 32 bytes"):
        verify_consistency(1, 2, [leaves[1]], leaves[0][:16], root2)
    verify_inclusion(leaves[0], 0, 2, [leaves[1]], root2)
    verify_consistency(1, 2, [leaves[1]], leaves[0], root2)


def test_probe_folders_are_complete():
    if not RFC9162.is_dir():
        pytest.skip(MISSING)
    for sub in ("inclusion", "consistency"):
        probes = [json.loads(p.read_text()) for p in (RFC9162 / sub).rglob("*.json")]
        assert len(probes) >= 98
        assert any(p["wantErr"] for p in probes)
        assert any(not p["wantErr"] for p in probes)


# ---------------------------------------------------------------- tlog-scales cross-check


@pytest.fixture(scope="module")
def tlog_scales_log(tmp_path_factory):
    """A tlog-tiles log written by tlog-scales, committed at several random sizes."""
    pytest.importorskip("tlog_scales")
    from tlog_scales import signing as ts_signing
    from tlog_scales import writer as ts_writer

    rng = random.Random(9162)
    sizes = sorted({1, 2, 3, 255, 256, 257, 511, 512, 513, 4096, *rng.sample(range(1, 4097), 30)})
    data = [f"entry {i}".encode() for i in range(sizes[-1])]
    root = tmp_path_factory.mktemp("tiles") / "log"
    log = ts_writer.TilesWriter.create(root, "example.com/cross-check")
    signer = ts_signing.PlainEd25519Signer("example.com/cross-check", bytes(range(32)))
    written = 0
    for size in sizes:
        for item in data[written:size]:
            log.add_leaf(item)
        # gc=False keeps each size's partial tiles, so the reader can serve every size.
        log.commit([signer], gc=False)
        written = size
    return root, sizes, data


def test_tlog_scales_agrees(tlog_scales_log):
    from tlog_scales import backend as ts_backend
    from tlog_scales import reader as ts_reader
    from tlog_scales import tlog as ts_tlog

    root, sizes, data = tlog_scales_log
    leaves = [leaf_hash(item) for item in data]
    tree, nodes = build(leaves)
    reader = ts_reader.TilesReader(ts_backend.LocalBackend(root))
    rng = random.Random(6962)
    checked = 0
    for size in sizes:
        reader.set_size(size)
        their_root = reader.calculate_root_hash()
        assert range_hash(0, size, nodes) == their_root, size
        for index in {0, size - 1, *rng.sample(range(size), min(size, 8))}:
            theirs = reader.get_inclusion_proof(index, size).node_hashes
            ours = range_hashes(inclusion_proof_ranges(index, size), nodes)
            assert ours == theirs, (index, size)
            verify_inclusion(leaves[index], index, size, theirs, their_root)
            ts_tlog.InclusionProof(index, size, ours).check(leaves[index], their_root)
            checked += 1
        for old in {1, size, *rng.sample(range(1, size + 1), min(size, 8))}:
            theirs = reader.get_consistency_proof(old, size).node_hashes
            ours = range_hashes(consistency_proof_ranges(old, size), nodes)
            assert ours == theirs, (old, size)
            old_root = range_hash(0, old, nodes)
            verify_consistency(old, size, theirs, old_root, their_root)
            ts_tlog.ConsistencyProof(old, size, ours).check(old_root, their_root)
            checked += 1
    assert tree.root() == reader.calculate_root_hash()
    assert checked > 500


def test_tlog_scales_leaf_tiles_hold_our_leaf_hashes(tlog_scales_log):
    root, _, data = tlog_scales_log
    tile = (root / "tile" / "0" / "000").read_bytes()
    assert [tile[i : i + 32] for i in range(0, 256 * 32, 32)] == [
        leaf_hash(item) for item in data[:256]
    ]
    # A level-1 tile entry is the hash of a full 256-leaf subtree: our node (8, i).
    _, nodes = build([leaf_hash(item) for item in data[:4096]])
    level1 = (root / "tile" / "1" / "000.p" / "16").read_bytes()
    assert [level1[i : i + 32] for i in range(0, 16 * 32, 32)] == [nodes[(8, i)] for i in range(16)]


# ---------------------------------------------------------------- ranges and nodes


def test_subtree_nodes_examples():
    assert subtree_nodes(0, 0) == []
    assert subtree_nodes(0, 1) == [(0, 0)]
    assert subtree_nodes(0, 6) == [(2, 0), (1, 2)]
    assert subtree_nodes(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert subtree_nodes(8, 16) == [(3, 1)]
    assert subtree_nodes(8, 13) == [(2, 2), (0, 12)]
    with pytest.raises(ValueError):
        subtree_nodes(5, 4)


def test_proof_ranges_examples():
    # RFC 9162 2.1.5 worked examples (tree of 7 leaves d0..d6).
    assert inclusion_proof_ranges(0, 7) == [(1, 2), (2, 4), (4, 7)]
    assert inclusion_proof_ranges(3, 7) == [(2, 3), (0, 2), (4, 7)]
    assert inclusion_proof_ranges(4, 7) == [(5, 6), (6, 7), (0, 4)]
    assert inclusion_proof_ranges(6, 7) == [(4, 6), (0, 4)]
    assert consistency_proof_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]
    assert consistency_proof_ranges(4, 7) == [(4, 7)]
    assert consistency_proof_ranges(6, 7) == [(4, 6), (6, 7), (0, 4)]
    assert consistency_proof_ranges(7, 7) == []
    assert root_ranges(7) == [(0, 7)]
    for bad in ((0, 5), (3, 2), (-1, 4)):
        with pytest.raises(ValueError):
            consistency_proof_ranges(*bad)
    with pytest.raises(ValueError):
        inclusion_proof_ranges(7, 7)


def test_range_hash_rejects_ranges_that_are_not_mth():
    _, nodes = build(leaves_for(16))
    for start, end in ((1, 3), (2, 5), (4, 9), (12, 17)):
        with pytest.raises(ValueError):
            range_hash(start, end, nodes)
    with pytest.raises(KeyError, match="missing tree node"):
        range_hash(0, 16, {})
    assert range_hash(0, 0, {}) == EMPTY_ROOT


def test_compact_range_validates_input():
    with pytest.raises(ValueError):
        CompactRange(3, [b"\x00" * 32])
    with pytest.raises(ValueError):
        CompactRange(1, [b"\x00" * 31])
    with pytest.raises(ValueError):
        CompactRange(-1)
    with pytest.raises(ValueError):
        CompactRange().append(b"short")
    tree = CompactRange()
    assert tree.root() == EMPTY_ROOT and tree.size == 0 and tree.frontier == []


def test_compact_range_reports_every_completed_node():
    tree = CompactRange()
    emitted = [tree.append(h) for h in leaves_for(8)]
    assert [[(lvl, idx) for lvl, idx, _ in nodes] for nodes in emitted] == [
        [(0, 0)],
        [(0, 1), (1, 0)],
        [(0, 2)],
        [(0, 3), (1, 1), (2, 0)],
        [(0, 4)],
        [(0, 5), (1, 2)],
        [(0, 6)],
        [(0, 7), (1, 3), (2, 1), (3, 0)],
    ]
    assert tree.frontier_nodes() == [(3, 0)]


def test_large_tree_spot_checks():
    n = 70_001
    leaves = leaves_for(n, salt=7)
    tree, nodes = build(leaves)
    assert tree.root() == root_from_leaf_hashes(leaves)
    assert len(nodes) == 2 * n - n.bit_count()
    rng = random.Random(1)
    for _ in range(50):
        size = rng.randint(1, n)
        index = rng.randrange(size)
        root = range_hash(0, size, nodes)
        proof = range_hashes(inclusion_proof_ranges(index, size), nodes)
        verify_inclusion(leaves[index], index, size, proof, root)
        old = rng.randint(1, size)
        proof = range_hashes(consistency_proof_ranges(old, size), nodes)
        verify_consistency(old, size, proof, range_hash(0, old, nodes), root)


# ---------------------------------------------------------------- properties

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tampered(proof: list[bytes], data: st.DataObject):
    """Yield every variant of `proof` with one bit flipped per element, or one element dropped."""
    for i, h in enumerate(proof):
        bit = data.draw(st.integers(0, 255), label=f"bit[{i}]")
        flipped = bytearray(h)
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield [*proof[:i], bytes(flipped), *proof[i + 1 :]]
        yield [*proof[:i], *proof[i + 1 :]]
    yield [*proof, proof[-1] if proof else EMPTY_ROOT]


@PROPS
@given(size=st.integers(1, 700), data=st.data())
def test_inclusion_proofs_from_nodes(size, data):
    leaves = leaves_for(size, salt=size)
    tree, nodes = build(leaves)
    root = tree.root()
    assert root == root_from_leaf_hashes(leaves) == range_hash(0, size, nodes)
    index = data.draw(st.integers(0, size - 1), label="index")
    ranges = inclusion_proof_ranges(index, size)
    # One fetch of nodes_needed is enough to build the proof and the root.
    fetched = {k: nodes[k] for k in nodes_needed([*ranges, *root_ranges(size)])}
    proof = range_hashes(ranges, fetched)
    assert range_hash(0, size, fetched) == root
    assert proof == inclusion_proof(index, size, leaves)
    verify_inclusion(leaves[index], index, size, proof, root)
    for bad in tampered(proof, data):
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, bad, root)
    other = data.draw(st.integers(0, size - 1), label="other")
    if leaves[other] != leaves[index]:
        with pytest.raises(ProofError):
            verify_inclusion(leaves[other], index, size, proof, root)


@PROPS
@given(size2=st.integers(1, 700), data=st.data())
def test_consistency_proofs_from_nodes(size2, data):
    leaves = leaves_for(size2, salt=-size2)
    _, nodes = build(leaves)
    size1 = data.draw(st.integers(1, size2), label="size1")
    ranges = consistency_proof_ranges(size1, size2)
    fetched = {k: nodes[k] for k in nodes_needed([*ranges, (0, size1), (0, size2)])}
    proof = range_hashes(ranges, fetched)
    assert proof == consistency_proof(size1, size2, leaves)
    root1, root2 = range_hash(0, size1, fetched), range_hash(0, size2, fetched)
    assert root1 == root_from_leaf_hashes(leaves[:size1])
    verify_consistency(size1, size2, proof, root1, root2)
    if size1 < size2:
        for bad in tampered(proof, data):
            with pytest.raises(ProofError):
                verify_consistency(size1, size2, bad, root1, root2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root2, root1)


@PROPS
@given(total=st.integers(0, 600), data=st.data())
def test_compact_range_resumes_from_stored_nodes(total, data):
    leaves = leaves_for(total, salt=3)
    scratch, nodes = build(leaves)
    cut = data.draw(st.integers(0, total), label="cut")
    # An integrator restarting reads the frontier back from the node table.
    frontier = [nodes[key] for key in subtree_nodes(0, cut)]
    resumed = CompactRange(cut, frontier)
    assert resumed.root() == root_from_leaf_hashes(leaves[:cut])
    emitted = resumed.extend(leaves[cut:])
    assert resumed.size == scratch.size == total
    assert resumed.root() == scratch.root()
    assert resumed.frontier == scratch.frontier
    # ...and emits exactly the nodes whose last leaf is at or after the cut.
    assert {(lvl, idx): h for lvl, idx, h in emitted} == {
        (lvl, idx): h for (lvl, idx), h in nodes.items() if (idx + 1) << lvl > cut
    }


@PROPS
@given(start=st.integers(0, 5000), length=st.integers(0, 5000))
def test_subtree_nodes_tile_the_range(start, length):
    end = start + length
    pos = start
    for level, index in subtree_nodes(start, end):
        assert index << level == pos
        pos += 1 << level
    assert pos == end
    assert len(subtree_nodes(0, end)) == end.bit_count()
