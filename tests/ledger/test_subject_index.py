"""The subject map: kept in the database, committed before each checkpoint, proven complete.

The reference is `SubjectMap`, the pure in-memory map the offline verifier and
verify_ledger recompute from the entries alone.
"""

import base64
import copy
import io
import json

import pytest
from django.core.management import call_command

from ledger.index import subject_map_proof
from ledger.integrity import LedgerTampered, ledger_verify
from ledger.keys import registry_signer
from ledger.models import LedgerEntry, SubjectIndexCommit
from ledger.selectors import ledger_subject_history, subject_completeness
from ledger.services import checkpoint_create
from ledger.verify.checks import Trust, VerificationFailed
from ledger.verify.completeness import check_complete_history
from ledger.verify.subject_map import (
    EMPTY,
    INDEX_EVENT,
    MapProof,
    MapProofError,
    SubjectMap,
    index_commit,
    key_hash,
    verify_map_proof,
)
from tests.ledger.factories import append_events, integrate_all, triggers_lifted

# ---------------------------------------------------------------- the pure map


def _event(subjects: list[str], n: int = 0) -> bytes:
    event = {"type": "test.happened", "actor": "system:test", "subject": subjects, "data": {"n": n}}
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def test_the_map_rehashes_only_what_changed_and_equals_a_fresh_build():
    events = [_event([f"bundle:{i % 7}", f"account:{i % 3}"], i) for i in range(40)]
    incremental = SubjectMap()
    for seq, event in enumerate(events):
        incremental.add(seq, event)
        if seq % 9 == 0:
            incremental.root()
    fresh = SubjectMap()
    for seq, event in enumerate(events):
        fresh.add(seq, event)
    assert incremental.root() == fresh.root() != EMPTY[16]
    assert fresh.values[key_hash("bundle:3")][0] == len(range(3, 40, 7))


def test_a_proof_proves_the_count_of_a_subject_and_the_absence_of_another():
    smap = SubjectMap()
    for seq in range(10):
        smap.add(seq, _event(["bundle:1"] if seq % 2 else ["bundle:2"], seq))
    root = smap.root()
    assert verify_map_proof(root, "bundle:1", smap.proof("bundle:1"))[0] == 5
    assert verify_map_proof(root, "bundle:999", smap.proof("bundle:999")) is None


def test_a_proof_for_another_key_or_a_doctored_bucket_proves_nothing():
    smap = SubjectMap()
    for seq in range(5):
        smap.add(seq, _event(["bundle:1", f"account:{seq}"], seq))
    root = smap.root()
    proof = smap.proof("bundle:1")
    with pytest.raises(MapProofError, match="bucket"):
        verify_map_proof(root, "account:3", proof)  # another key's bucket
    emptied = MapProof(proof.bucket, [], proof.siblings)  # "bundle:1 has no entry"
    with pytest.raises(MapProofError, match="committed index root"):
        verify_map_proof(root, "bundle:1", emptied)
    key, count, chain = proof.records[0]
    fewer = MapProof(proof.bucket, [(key, count - 1, chain)], proof.siblings)
    with pytest.raises(MapProofError, match="committed index root"):
        verify_map_proof(root, "bundle:1", fewer)
    assert MapProof.from_json(proof.as_json()) == proof


# ---------------------------------------------------------------- in the database


def _recomputed(size: int) -> bytes:
    smap = SubjectMap()
    for seq, event in LedgerEntry.objects.filter(seq__lt=size).values_list("seq", "event"):
        smap.add(seq, bytes(event))
    return smap.root()


@pytest.mark.django_db
@pytest.mark.subject_index
def test_each_checkpoint_ends_with_the_map_of_every_entry_before_it():
    append_events(7)
    integrate_all()
    first, created = checkpoint_create()
    assert created and first.size == 8
    last = LedgerEntry.objects.get(seq=7)
    assert last.kind == INDEX_EVENT
    assert index_commit(bytes(last.event)) == (7, _recomputed(7))

    append_events(5, subject=("account", 4), start=7)
    integrate_all()
    second, _ = checkpoint_create()
    assert second.size == 14
    size, root = index_commit(bytes(LedgerEntry.objects.get(seq=13).event))
    assert (size, root) == (13, _recomputed(13))
    assert bytes(SubjectIndexCommit.objects.get(size=13).root) == root
    assert checkpoint_create() == (second, False)  # nothing new: no entry, no checkpoint


@pytest.mark.django_db
@pytest.mark.subject_index
def test_stored_proofs_at_an_older_size_prove_what_the_map_held_then():
    append_events(6)
    integrate_all()
    checkpoint_create()
    old_root = index_commit(bytes(LedgerEntry.objects.get(seq=6).event))[1]
    append_events(6, start=6)
    integrate_all()
    checkpoint_create()
    assert verify_map_proof(old_root, "bundle:0", subject_map_proof("bundle:0", 6))[0] == 2
    new_root = index_commit(bytes(LedgerEntry.objects.get(seq=13).event))[1]
    assert verify_map_proof(new_root, "bundle:0", subject_map_proof("bundle:0", 13))[0] == 4


def _history_bundle(key: str) -> dict:
    history = ledger_subject_history(key=key)
    return {
        "checkpoint": history.checkpoint.note,
        "entries": [
            {
                "seq": item.entry.seq,
                "event_b64": base64.b64encode(bytes(item.entry.event)).decode(),
                "proof": [base64.b64encode(h).decode() for h in item.proof],
            }
            for item in history.entries
        ],
        "completeness": history.completeness,
    }


@pytest.fixture
def logged():
    append_events(9)  # bundle:0, bundle:1, bundle:2 three times each
    append_events(2, subject=("account", 8), start=9)
    integrate_all()
    checkpoint_create()
    return Trust.from_strings(registry_signer().vkey)


@pytest.mark.django_db
@pytest.mark.subject_index
def test_a_whole_history_verifies_complete(logged):
    result = check_complete_history(_history_bundle("bundle:1"), logged, ("bundle", "1"))
    assert result.counts == {"bundle:1": 3}
    assert result.index_size == 11


@pytest.mark.django_db
@pytest.mark.subject_index
def test_a_subject_with_no_entry_is_proven_absent(logged):
    result = check_complete_history(_history_bundle("bundle:77"), logged, ("bundle", "77"))
    assert result.counts == {"bundle:77": 0}
    assert result.history.entries == []


@pytest.mark.django_db
@pytest.mark.subject_index
def test_a_history_with_one_entry_left_out_is_refused(logged):
    bundle = _history_bundle("bundle:1")
    del bundle["entries"][1]
    with pytest.raises(VerificationFailed, match=r"proves 3 entries .* has 2: entries were left"):
        check_complete_history(bundle, logged, ("bundle", "1"))


@pytest.mark.django_db
@pytest.mark.subject_index
def test_an_entry_of_another_subject_slipped_in_is_refused(logged):
    bundle = _history_bundle("bundle:1")
    other = _history_bundle("account:8")["entries"][0]
    bundle["entries"].append(other)
    with pytest.raises(VerificationFailed, match="is about account:8, not bundle:1"):
        check_complete_history(bundle, logged, ("bundle", "1"))
    # Without a subject to hold it to, the completeness check still refuses it.
    with pytest.raises(VerificationFailed, match="about none of bundle:1"):
        check_complete_history(bundle, logged)


@pytest.mark.django_db
@pytest.mark.subject_index
def test_a_non_inclusion_proof_for_a_subject_with_entries_is_refused(logged):
    bundle = _history_bundle("bundle:1")
    proof = bundle["completeness"]["subjects"]["bundle:1"]
    proof["records"] = [r for r in proof["records"] if r["key"] != _b64(key_hash("bundle:1"))]
    with pytest.raises(VerificationFailed, match="committed index root"):
        check_complete_history(bundle, logged, ("bundle", "1"))
    bundle = _history_bundle("bundle:1")
    bundle["completeness"]["subjects"]["bundle:1"] = _history_bundle("bundle:77")["completeness"][
        "subjects"
    ]["bundle:77"]  # a map proof for another key
    with pytest.raises(VerificationFailed, match="bucket"):
        check_complete_history(bundle, logged, ("bundle", "1"))


@pytest.mark.django_db
@pytest.mark.subject_index
def test_a_stale_index_or_none_at_all_is_refused(logged):
    stale = _history_bundle("bundle:1")
    append_events(3, start=11)  # bundle:2, bundle:0, bundle:1
    integrate_all()
    checkpoint_create()
    fresh = _history_bundle("bundle:1")
    mixed = copy.deepcopy(fresh)
    mixed["completeness"] = stale["completeness"]  # the old checkpoint's index entry
    with pytest.raises(VerificationFailed, match="not the last entry"):
        check_complete_history(mixed, logged, ("bundle", "1"))
    without = copy.deepcopy(fresh)
    without["completeness"] = None
    with pytest.raises(VerificationFailed, match="without a completeness proof"):
        check_complete_history(without, logged, ("bundle", "1"))
    assert check_complete_history(fresh, logged, ("bundle", "1")).counts == {"bundle:1": 4}


@pytest.mark.django_db
def test_a_checkpoint_signed_without_the_map_has_no_completeness_proof():
    append_events(3)
    integrate_all()
    checkpoint, _ = checkpoint_create()
    assert subject_completeness(keys=["bundle:1"], size=checkpoint.size) is None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------- verify_ledger recomputes it


@pytest.mark.django_db
@pytest.mark.subject_index
def test_verify_ledger_recomputes_the_map_and_checks_every_commitment():
    append_events(5)
    integrate_all()
    checkpoint_create()
    append_events(4, start=5)
    integrate_all()
    checkpoint_create()
    out = io.StringIO()
    call_command("verify_ledger", "--no-progress", stdout=out, stderr=io.StringIO())
    assert "Subject map: 2 commitments agree" in out.getvalue()
    assert ledger_verify().index_commits == 2


@pytest.mark.django_db
@pytest.mark.subject_index
def test_a_registry_that_commits_a_wrong_map_root_is_caught(monkeypatch):
    import ledger.index

    append_events(5)
    integrate_all()
    checkpoint_create()
    # a registry whose index is wrong (a subject's entry dropped from its map) signs it
    append_events(3, start=5)
    integrate_all()
    honest = ledger.index.subject_index_update
    monkeypatch.setattr(ledger.index, "subject_index_update", lambda size: (bytes(32), 1))
    checkpoint_create()
    monkeypatch.setattr(ledger.index, "subject_index_update", honest)
    with pytest.raises(LedgerTampered, match="entry 9: the subject map root differs"):
        ledger_verify()


@pytest.mark.django_db
@pytest.mark.subject_index
def test_a_stored_commit_that_disagrees_with_the_log_is_caught():
    append_events(3)
    integrate_all()
    checkpoint_create()
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE ledger_subjectindexcommit SET root = %s", [bytes(32)])
    with pytest.raises(LedgerTampered, match="subject index commit 3: stored root differs"):
        ledger_verify()


@pytest.mark.django_db
@pytest.mark.subject_index
def test_a_key_rotation_and_the_map_commitments_verify_together():
    from django.conf import settings
    from django.test import override_settings

    from ledger.keys import registry_signer_configured
    from ledger.rotation import log_key_rotate
    from ledger.signing import Signer

    append_events(3)
    integrate_all()
    checkpoint_create()  # 3 entries + the map: size 4, by the first key
    new = Signer(settings.REGISTRY_ORIGIN, bytes([5]) * 32)
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new.private_key()):
        log_key_rotate(actor="system:test")
        integrate_all()
        append_events(2, start=3)
        integrate_all()
        checkpoint, _ = checkpoint_create()  # announcement, 2 entries, the map: size 8
        assert checkpoint.size == 8 and checkpoint.key_id == new.verifier.key_id.hex()
        report = ledger_verify()
    assert (report.checkpoints, report.index_commits) == (2, 2)
    old = registry_signer_configured().verifier.key_id.hex()
    history = ledger_subject_history(key=f"log_key:{old}")
    assert [item.entry.kind for item in history.entries] == ["ledger.key_rotated"]
    assert history.completeness is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.subject_index
def test_outside_a_transaction_the_map_catches_up_before_the_head_is_locked(monkeypatch):
    import ledger.index

    append_events(6)
    integrate_all()
    caught_up = []
    catch_up = ledger.index.subject_index_catch_up
    monkeypatch.setattr(
        "ledger.services.subject_index_catch_up", lambda: caught_up.append(catch_up())
    )
    checkpoint, created = checkpoint_create()  # the periodic task's way: no transaction
    assert created and checkpoint.size == 7 and caught_up == [6]
    # the map was already at 6 when the head was locked: the commitment took what it had
    assert list(SubjectIndexCommit.objects.values_list("size", flat=True)) == [6]
    assert ledger_verify().index_commits == 1
    append_events(2, start=6)
    integrate_all()
    checkpoint, _ = checkpoint_create()
    assert checkpoint.size == 10 and caught_up == [6, 3]  # the first commitment and 2 new
    assert ledger_verify().index_commits == 2
