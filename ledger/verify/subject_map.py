"""The subject map, `gridproof-subject-map/v1`: which entries of the log are about a subject.

A pure function of the log that anyone holding the entries can recompute (standard
library only). For a log of size M it maps each subject ("bundle:12") to the number of
entries about it and a running hash over their leaf hashes, in sequence order:

    chain_0 = 32 zero bytes,  chain_i = SHA-256(chain_(i-1) || leaf_hash_i)

so a history with one entry left out, one slipped in or two swapped gives another count
or chain. Which subjects an entry is about is `subjects_v1` below: the entry's own
`subject` list plus, for old entries whose list was short, the subjects its data proves it
changed (ledger/EVENTS.md, "Subjects of old entries"). A later rule is a new map version.

The map is authenticated as a Merkle hash table. A subject's key is SHA-256 of its UTF-8
name; its record is `key || count (8 bytes, big-endian) || chain` (72 bytes). Records fall
into 2^16 buckets by the first two bytes of the key; a bucket hashes as
SHA-256(0x02 || its records sorted by key), and the buckets are the leaves of a complete
binary tree of depth 16 whose inner nodes are SHA-256(0x01 || left || right). The
root of that tree is the map root.

A proof for a subject is its whole bucket (every record in it) and the 16 sibling hashes
on the way up. With its record the bucket proves the count and chain; without it, that
the subject has no entry at all (non-inclusion): the bucket lists every key it holds.
Why a hash table and not a sparse Merkle tree: docs/ledger-index.md.

The root is committed by the log itself: just before each checkpoint the registry appends
an entry `ledger.subject_index_committed` whose data carries the map root of every entry
before it, so the checkpoint's signature and every witness's cosignature cover the root
while the checkpoint stays a plain three-line C2SP checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAP_NAME = "gridproof-subject-map/v1"
INDEX_EVENT = "ledger.subject_index_committed"
BUCKET_BITS = 16
BUCKETS = 1 << BUCKET_BITS
ZERO_CHAIN = bytes(32)
RECORD_SIZE = 72

_sha256 = hashlib.sha256


class MapProofError(ValueError):
    """A map proof that does not verify, or is malformed."""


def key_hash(subject: str) -> bytes:
    return _sha256(subject.encode("utf-8")).digest()


def bucket_of(key: bytes) -> int:
    return int.from_bytes(key[:2], "big")


def chain_next(chain: bytes, leaf_hash: bytes) -> bytes:
    return _sha256(chain + leaf_hash).digest()


def record_bytes(key: bytes, count: int, chain: bytes) -> bytes:
    return key + count.to_bytes(8, "big") + chain


def bucket_hash(records: Iterable[bytes]) -> bytes:
    """The hash of a bucket from its records, already sorted by key."""
    return _sha256(b"\x02" + b"".join(records)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _empty_levels() -> list[bytes]:
    levels = [bucket_hash([])]
    for _ in range(BUCKET_BITS):
        levels.append(node_hash(levels[-1], levels[-1]))
    return levels


EMPTY = _empty_levels()
"""EMPTY[level]: the hash of a subtree of 2^level empty buckets; EMPTY[16] is the empty map."""


# ---------------------------------------------------------------- which entries, version 1


def _ids(kind: str, values: Iterable[Any]) -> list[str]:
    return [f"{kind}:{value}" for value in values if type(value) is int]  # not bool


def _move_bundles(move: Mapping[str, Any]) -> list[str]:
    return _ids("bundle", (move.get(f) for f in ("bundle_id", "moved_bundle_id", "rest_bundle_id")))


def _issuance_keys(issuance: Any) -> list[str]:
    """Every bundle and account of an issuance object's periods."""
    if not isinstance(issuance, Mapping):
        return []
    keys = _ids("issuance", [issuance.get("issuance_id")])
    for period in issuance.get("periods") or []:
        if not isinstance(period, list) or len(period) < 5 or not isinstance(period[4], list):
            continue
        for owner in period[4]:
            if isinstance(owner, list) and len(owner) >= 2:
                keys += _ids("bundle", owner[:1]) + _ids("account", owner[1:2])
    return keys


ISSUANCE_KINDS = ("certificate.issued", "issuance_request.created", "issuance_request.approved")


def _derived_v1(event_type: str, data: Mapping[str, Any]) -> list[str]:
    if event_type in ISSUANCE_KINDS:
        return _issuance_keys(data.get("issuance"))
    if event_type == "certificate.transferred":
        return _move_bundles(data) + _ids(
            "account", (data.get("from_account_id"), data.get("to_account_id"))
        )
    if event_type == "certificate.batch_transferred":
        keys: list[str] = _ids("account", [data.get("to_account_id")])
        for item in data.get("transfers") or []:
            if isinstance(item, Mapping):
                keys += _derived_v1("certificate.transferred", item)
                keys += _ids("transfer", [item.get("transfer_id")])
        return keys
    if event_type == "certificate.retired":
        keys = _ids("account", [data.get("account_id")])
        for item in data.get("items") or []:
            if isinstance(item, Mapping):
                keys += _move_bundles(item)
        return keys
    if event_type == "certificate.withdrawn":
        return (
            _ids("bundle", data.get("withdrawn_bundle_ids") or [])
            + _ids("bundle", data.get("flagged_bundle_ids") or [])
            + _ids("transfer", data.get("cancelled_transfer_ids") or [])
        )
    if event_type == "certificate.expired":
        return _ids("bundle", data.get("bundle_ids") or [])
    return []


_DERIVING_KINDS = frozenset(
    (
        *ISSUANCE_KINDS,
        "certificate.transferred",
        "certificate.batch_transferred",
        "certificate.retired",
        "certificate.withdrawn",
        "certificate.expired",
    )
)
"""The kinds `_derived_v1` derives subjects for; any other kind's are the ones it lists."""


def subjects_v1(event_type: str, data: Mapping[str, Any], listed: Iterable[str]) -> list[str]:
    """The subjects an index (version 1) files an entry under: those it lists, in order,
    then those its data shows it changed that the list left out (old entries)."""
    keys = list(dict.fromkeys(str(key) for key in listed))
    if event_type not in _DERIVING_KINDS or not isinstance(data, Mapping):
        return keys
    seen = set(keys)
    for key in _derived_v1(event_type, data):
        if key not in seen:
            seen.add(key)
            keys.append(key)
    return keys


_DECODE = json.JSONDecoder().decode


def _parse(event: bytes) -> Any:
    """`json.loads(event)`, without its encoding detection for what can only be UTF-8.

    `json.loads` on bytes guesses UTF-16 or UTF-32 from a BOM or NUL bytes in the first
    four; bytes starting `{"` have neither, so it would decode them as UTF-8 (surrogates
    allowed) as this does. Every canonical event starts so; anything else takes the long way.
    """
    if event[:2] == b'{"':
        return _DECODE(event.decode("utf-8", "surrogatepass"))
    return json.loads(event)


def entry_subjects(event: bytes) -> list[str]:
    """The subjects (version 1) of an entry's canonical event bytes.

    Bytes that are not a JSON object with a string `type` and a list of strings as
    `subject` are about nothing: a peer's log may hold anything, and the map must be
    computable for every log."""
    try:
        doc = _parse(event)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(doc, dict):
        return []
    kind, listed = doc.get("type"), doc.get("subject")
    if not isinstance(kind, str) or not isinstance(listed, list):
        return []
    if not all(isinstance(key, str) for key in listed):
        return []
    if kind not in _DERIVING_KINDS:
        return list(dict.fromkeys(listed))
    return subjects_v1(kind, doc.get("data"), listed)


# ---------------------------------------------------------------- the map in memory


class SubjectMap:
    """The map of a log, built entry by entry (verify_ledger, mirrors, the offline verifier).

    `add` takes entries in sequence order; `root()` rehashes only the buckets that
    changed since the last call and their 16 ancestors each.
    """

    def __init__(self) -> None:
        self.size = 0
        self.values: dict[bytes, tuple[int, bytes]] = {}
        self._buckets: dict[int, set[bytes]] = {}
        self._levels: list[dict[int, bytes]] = [{} for _ in range(BUCKET_BITS + 1)]
        self._dirty: set[int] = set()

    @classmethod
    def resumed(cls, size: int, bucket_hashes: dict[int, bytes]) -> SubjectMap:
        """The map of a log's first `size` entries from its stored bucket hashes alone.

        The records are not loaded: `load_bucket` each bucket before an entry touches it
        (a mirror's stored map, federation/index_check.py)."""
        smap = cls()
        smap.size = size
        smap._levels[0] = dict(bucket_hashes)
        changed = set(bucket_hashes)
        for level in range(1, BUCKET_BITS + 1):
            below, here, empty = smap._levels[level - 1], smap._levels[level], EMPTY[level - 1]
            changed = {index >> 1 for index in changed}
            for index in changed:
                here[index] = node_hash(
                    below.get(2 * index, empty), below.get(2 * index + 1, empty)
                )
        return smap

    def load_bucket(self, bucket: int, records: Iterable[tuple[bytes, int, bytes]]) -> None:
        """Put a bucket's stored records (key, count, chain) back; its hash is unchanged."""
        keys = self._buckets.setdefault(bucket, set())
        for key, count, chain in records:
            keys.add(key)
            self.values[key] = (count, chain)

    def add(
        self,
        seq: int,
        event: bytes,
        leaf_hash: bytes | None = None,
        subjects: list[str] | None = None,
    ) -> list[str]:
        """File entry `seq` (the next one) under its subjects; returns them. A caller that
        already has `entry_subjects(event)` passes them, so the event is not parsed again."""
        if seq != self.size:
            raise ValueError(f"entry {seq} added to a map of size {self.size}")
        if leaf_hash is None:
            leaf_hash = _sha256(b"\x00" + event).digest()
        if subjects is None:
            subjects = entry_subjects(event)
        for subject in subjects:
            self.add_subject_leaf(key_hash(subject), leaf_hash)
        self.size += 1
        return subjects

    def add_subject_leaf(self, key: bytes, leaf_hash: bytes) -> None:
        count, chain = self.values.get(key, (0, ZERO_CHAIN))
        if count == 0:
            self._buckets.setdefault(bucket_of(key), set()).add(key)
        self.values[key] = (count + 1, chain_next(chain, leaf_hash))
        self._dirty.add(bucket_of(key))

    def bucket_hashes(self, buckets: Iterable[int]) -> dict[int, bytes]:
        """The current hash of each of `buckets` that holds a record."""
        self.root()
        return {bucket: self._levels[0][bucket] for bucket in buckets if bucket in self._levels[0]}

    def bucket_records(self, bucket: int) -> list[tuple[bytes, int, bytes]]:
        return [(key, *self.values[key]) for key in sorted(self._buckets.get(bucket, ()))]

    def root(self) -> bytes:
        changed = self._dirty
        self._dirty = set()
        level0 = self._levels[0]
        for bucket in changed:
            level0[bucket] = bucket_hash(record_bytes(*r) for r in self.bucket_records(bucket))
        for level in range(1, BUCKET_BITS + 1):
            below, here, empty = self._levels[level - 1], self._levels[level], EMPTY[level - 1]
            changed = {index >> 1 for index in changed}
            for index in changed:
                left = below.get(2 * index, empty)
                right = below.get(2 * index + 1, empty)
                here[index] = node_hash(left, right)
        return self._levels[BUCKET_BITS].get(0, EMPTY[BUCKET_BITS])

    def proof(self, subject: str) -> MapProof:
        self.root()
        bucket = bucket_of(key_hash(subject))
        siblings = [
            self._levels[level].get((bucket >> level) ^ 1, EMPTY[level])
            for level in range(BUCKET_BITS)
        ]
        return MapProof(bucket, self.bucket_records(bucket), siblings)


# ---------------------------------------------------------------- proofs


@dataclass(frozen=True)
class MapProof:
    """A subject's bucket, every record in it, and the sibling hashes from bucket to root."""

    bucket: int
    records: list[tuple[bytes, int, bytes]]
    siblings: list[bytes]

    def as_json(self) -> dict[str, Any]:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        return {
            "map": MAP_NAME,
            "bucket": self.bucket,
            "records": [
                {"key": b64(key), "count": count, "chain": b64(chain)}
                for key, count, chain in self.records
            ],
            "siblings": [b64(h) for h in self.siblings],
        }

    @classmethod
    def from_json(cls, doc: Any) -> MapProof:
        if not isinstance(doc, Mapping):
            raise MapProofError("the map proof must be an object")
        if doc.get("map") != MAP_NAME:
            raise MapProofError(f"the map proof is not a {MAP_NAME} proof")
        bucket, records, siblings = doc.get("bucket"), doc.get("records"), doc.get("siblings")
        if type(bucket) is not int or not 0 <= bucket < BUCKETS:
            raise MapProofError("the map proof's bucket is not a bucket number")
        if not isinstance(records, list) or not isinstance(siblings, list):
            raise MapProofError("the map proof needs lists of records and siblings")
        parsed = []
        for i, record in enumerate(records):
            if not isinstance(record, Mapping) or type(record.get("count")) is not int:
                raise MapProofError(f"record {i} of the map proof is malformed")
            parsed.append(
                (_hash32(record.get("key"), f"record {i} key"), record["count"],
                 _hash32(record.get("chain"), f"record {i} chain"))
            )  # fmt: skip
        return cls(bucket, parsed, [_hash32(h, "sibling") for h in siblings])


def _hash32(value: Any, what: str) -> bytes:
    try:
        data = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except ValueError:
        data = b""
    if len(data) != 32:
        raise MapProofError(f"the map proof's {what} is not a base64 SHA-256 hash")
    return data


def map_proof_root(proof: MapProof) -> bytes:
    """The map root a proof leads to; MapProofError if its bucket is not well formed."""
    if len(proof.siblings) != BUCKET_BITS:
        raise MapProofError(f"a map proof has {BUCKET_BITS} siblings, not {len(proof.siblings)}")
    previous = None
    for key, count, _chain in proof.records:
        if bucket_of(key) != proof.bucket:
            raise MapProofError(f"a record of the map proof is not in bucket {proof.bucket}")
        if previous is not None and key <= previous:
            raise MapProofError("the map proof's records are not sorted by key without repeats")
        if not 0 < count < 1 << 63:
            raise MapProofError("a record of the map proof counts no entries")
        previous = key
    node = bucket_hash(record_bytes(*record) for record in proof.records)
    for level, sibling in enumerate(proof.siblings):
        right_child = (proof.bucket >> level) & 1
        node = node_hash(sibling, node) if right_child else node_hash(node, sibling)
    return node


def verify_map_proof(root: bytes, subject: str, proof: MapProof) -> tuple[int, bytes] | None:
    """The subject's (count, chain) proven by `proof` under map `root`, or None when the
    proof shows the subject has no entry. MapProofError when it proves nothing."""
    key = key_hash(subject)
    if proof.bucket != bucket_of(key):
        raise MapProofError(f"the map proof is for bucket {proof.bucket}, not {subject}'s")
    if map_proof_root(proof) != root:
        raise MapProofError("the map proof does not lead to the committed index root")
    for record_key, count, chain in proof.records:
        if record_key == key:
            return count, chain
    return None


def history_chain(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """The (count, chain) of a subject whose entries have these leaf hashes, in order."""
    count, chain = 0, ZERO_CHAIN
    for leaf in leaf_hashes:
        count, chain = count + 1, chain_next(chain, leaf)
    return count, chain


def index_commit(event: bytes) -> tuple[int, bytes] | None:
    """(index size, map root) of a `ledger.subject_index_committed` entry; None for any
    other entry. MapProofError for an index entry that is malformed."""
    try:
        doc = json.loads(event)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("type") != INDEX_EVENT:
        return None
    data = doc.get("data")
    if not isinstance(data, Mapping) or data.get("map") != MAP_NAME:
        raise MapProofError(f"an index entry that is not a {MAP_NAME} commitment")
    size = data.get("size")
    if type(size) is not int or size < 0:
        raise MapProofError("an index entry without a log size")
    return size, _hash32(data.get("root"), "root")
