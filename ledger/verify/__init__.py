"""Stand-alone verifier for the GridProof ledger: standard library and PyNaCl only.

Auditors run it offline (`python -m ledger.verify --help`); it never imports Django or
any other part of the project, so it can be copied out of the repository as a package.
"""

from ledger.verify.note import (
    Checkpoint,
    Note,
    NoteError,
    NoteSignature,
    VerifierKey,
    key_id,
    verify_checkpoint,
    verify_note,
)
from ledger.verify.rfc9162 import (
    EMPTY_ROOT,
    ProofError,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "Note",
    "NoteError",
    "NoteSignature",
    "ProofError",
    "VerifierKey",
    "key_id",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_note",
]
