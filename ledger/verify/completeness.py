"""Proving a history complete: no entry about its subjects left out, none slipped in.

A history bundle proven at checkpoint size C carries `completeness`: the entry that
ends the checkpoint's tree (seq C - 1, `ledger.subject_index_committed`, committing the
subject map of the C - 1 entries before it) with its inclusion proof, and for each
subject a map proof (ledger/verify/subject_map.py) of its entry count and running hash.
The entries given must reproduce both exactly; a subject the map proves absent must have
no entry. Standard library and PyNaCl only, like the rest of the verifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.verify.checks import (
    HistoryResult,
    Trust,
    VerificationFailed,
    _b64,
    _mapping,
    _proof,
    _seq,
    _verify_entry,
    check_history,
)
from ledger.verify.rfc9162 import leaf_hash
from ledger.verify.subject_map import (
    MapProof,
    MapProofError,
    entry_subjects,
    history_chain,
    index_commit,
    verify_map_proof,
)


@dataclass(frozen=True)
class CompleteHistory:
    history: HistoryResult
    index_size: int
    counts: dict[str, int]  # per subject: entries proven to be all there are (0: absent)


def check_complete_history(
    bundle: Mapping[str, Any], trust: Trust, subject: tuple[str, str] | None = None
) -> CompleteHistory:
    """`check_history`, then the completeness proof; refuses a history without one."""
    history = check_history(bundle, trust, subject)
    doc = bundle.get("completeness")
    if doc is None:
        raise VerificationFailed(
            "the history comes without a completeness proof: it shows that each listed "
            "entry is in the log, not that none was left out"
        )
    doc = _mapping(doc, "completeness")
    cp = history.checkpoint.checkpoint
    index = _mapping(doc.get("index_entry"), "completeness.index_entry")
    seq = _seq(index.get("seq"), "completeness.index_entry.seq")
    if seq != cp.size - 1:
        raise VerificationFailed(
            f"the index entry is entry {seq}, not the last entry ({cp.size - 1}) of the "
            f"checkpoint of size {cp.size}"
        )
    event = _b64(index.get("event_b64"), "completeness.index_entry.event_b64")
    _verify_entry(cp, seq, event, _proof(index.get("proof"), "completeness.index_entry.proof"))
    try:
        commit = index_commit(event)
    except MapProofError as exc:
        raise VerificationFailed(f"entry {seq}: {exc}") from None
    if commit is None:
        raise VerificationFailed(f"entry {seq} is not a subject index commitment")
    size, root = commit
    if size != seq:
        raise VerificationFailed(
            f"the index entry {seq} commits the map of {size} entries, not of the {seq} "
            "before it: a stale index"
        )
    proofs = _mapping(doc.get("subjects"), "completeness.subjects")
    if subject is not None and f"{subject[0]}:{subject[1]}" not in proofs:
        raise VerificationFailed(f"no map proof for {subject[0]}:{subject[1]}")
    if not proofs:
        raise VerificationFailed("the completeness proof covers no subject")
    entries = [(s, ev, entry_subjects(ev)) for s, ev in history.entries if s < size]
    counts: dict[str, int] = {}
    for key, proof_doc in proofs.items():
        counts[key] = _check_subject(key, proof_doc, root, entries)
    for s, _event, about in entries:
        if not set(about) & set(proofs):
            raise VerificationFailed(f"entry {s} is about none of {', '.join(sorted(proofs))}")
    return CompleteHistory(history, size, counts)


def _check_subject(key: str, proof_doc: Any, root: bytes, entries: list) -> int:
    try:
        proven = verify_map_proof(root, key, MapProof.from_json(proof_doc))
    except MapProofError as exc:
        raise VerificationFailed(f"{key}: {exc}") from None
    mine = [(s, event) for s, event, about in entries if key in about]
    if proven is None:
        if mine:
            raise VerificationFailed(
                f"{key}: the map proves it has no entry, yet entry {mine[0][0]} is about it"
            )
        return 0
    count, chain = history_chain(leaf_hash(event) for _s, event in mine)
    if count != proven[0]:
        raise VerificationFailed(
            f"{key}: the index proves {proven[0]} entries about it, the history has {count}: "
            + ("entries were left out" if count < proven[0] else "entries were slipped in")
        )
    if chain != proven[1]:
        raise VerificationFailed(
            f"{key}: the entries given are not the ones the index proves (running hash differs)"
        )
    return count
