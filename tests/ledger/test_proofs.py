"""Roots and proofs from storage equal the in-memory RFC 9162 reference, in one query."""

import pytest

from ledger import merkle, selectors
from ledger.errors import InvalidProofRequest, TreeSizeExceeded
from ledger.keys import registry_signer
from ledger.merkle import root_from_leaf_hashes, verify_consistency, verify_inclusion
from ledger.services import checkpoint_create
from ledger.verify.note import verify_checkpoint
from tests.ledger.factories import append_events, integrate_all, leaf_hashes, ledger_with

pytestmark = pytest.mark.django_db

N = 21


@pytest.fixture
def leaves() -> list[bytes]:
    # Batches of odd sizes, so that the stored tree was resumed many times.
    for count in (1, 4, 7, 2, 7):
        append_events(count)
        integrate_all(max_batch=3)
    return leaf_hashes()


def test_root_of_every_size(leaves):
    for size in range(N + 1):
        assert selectors.ledger_root(size=size) == root_from_leaf_hashes(leaves[:size])


def test_inclusion_proofs_equal_the_reference_and_verify(leaves):
    for size in range(1, N + 1):
        root = root_from_leaf_hashes(leaves[:size])
        for seq in range(size):
            # when
            proof = selectors.ledger_inclusion_proof(seq=seq, size=size)

            # then
            assert proof.proof == merkle.inclusion_proof(seq, size, leaves)
            assert (proof.leaf_hash, proof.root) == (leaves[seq], root)
            verify_inclusion(proof.leaf_hash, seq, size, proof.proof, proof.root)


def test_consistency_proofs_equal_the_reference_and_verify(leaves):
    for second in range(1, N + 1):
        for first in range(1, second + 1):
            # when
            proof = selectors.ledger_consistency_proof(first=first, second=second)

            # then
            assert proof.proof == merkle.consistency_proof(first, second, leaves)
            verify_consistency(
                first,
                second,
                proof.proof,
                root_from_leaf_hashes(leaves[:first]),
                root_from_leaf_hashes(leaves[:second]),
            )


def test_each_proof_is_one_query_of_logarithmic_size(leaves, django_assert_num_queries):
    with django_assert_num_queries(1) as context:
        selectors.ledger_inclusion_proof(seq=5, size=N)
    assert "ledger_treenode" in context.captured_queries[0]["sql"]
    with django_assert_num_queries(1):
        selectors.ledger_consistency_proof(first=7, second=N)
    with django_assert_num_queries(1):
        selectors.ledger_root(size=N - 1)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: selectors.ledger_inclusion_proof(seq=3, size=N + 1), TreeSizeExceeded),
        (lambda: selectors.ledger_inclusion_proof(seq=5, size=5), InvalidProofRequest),
        (lambda: selectors.ledger_consistency_proof(first=0, second=3), InvalidProofRequest),
        (lambda: selectors.ledger_consistency_proof(first=4, second=3), InvalidProofRequest),
        (lambda: selectors.ledger_consistency_proof(first=4, second=N + 1), TreeSizeExceeded),
        (lambda: selectors.ledger_root(size=N + 1), TreeSizeExceeded),
    ],
)
def test_impossible_proofs_are_refused(leaves, call, error):
    with pytest.raises(error):
        call()


def test_subject_history_proves_each_entry_against_the_latest_checkpoint():
    # given
    ledger_with(10)  # subjects bundle:0, bundle:1, bundle:2 in turn
    checkpoint, _ = checkpoint_create()
    append_events(3, start=10)  # integrated later than the checkpoint: not listed yet
    integrate_all()

    # when
    history = selectors.ledger_subject_history(key="bundle:1")

    # then
    cp, _ = verify_checkpoint(history.checkpoint.note, registry_signer().vkey)
    assert cp.size == checkpoint.size == 10
    assert [item.entry.seq for item in history.entries] == [1, 4, 7]
    for item in history.entries:
        leaf = merkle.leaf_hash(bytes(item.entry.event))
        verify_inclusion(leaf, item.entry.seq, cp.size, item.proof, cp.root)
