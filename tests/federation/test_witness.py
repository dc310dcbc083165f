"""This registry as a C2SP tlog-witness: POST /add-checkpoint, happy path and every refusal."""

import pytest

from federation.models import Evidence, Peer, WitnessedCheckpoint
from federation.protocol import SIZE_CONTENT_TYPE, encode_add_checkpoint, parse_signature_lines
from ledger.keys import registry_witness
from ledger.signing import sign_checkpoint
from ledger.verify.note import Note, verify_checkpoint
from tests.federation.factories import ledger_event_count, ledger_kinds, peer_for_log
from tests.federation.fakes import FakeLog, make_signer

pytestmark = pytest.mark.django_db


@pytest.fixture
def log() -> FakeLog:
    log = FakeLog()
    log.append(10)
    return log


@pytest.fixture
def peer(log) -> Peer:
    return peer_for_log(log)


def post(client, body: bytes):
    return client.post("/add-checkpoint", data=body, content_type="text/plain")


def submit(client, log: FakeLog, old: int, size: int, proof=None, note: str | None = None):
    proof = log.consistency(old, size) if proof is None and 0 < old < size else (proof or [])
    return post(client, encode_add_checkpoint(old, proof, note or log.checkpoint(size)))


def test_first_checkpoint_is_cosigned_and_remembered(client, log, peer):
    # given a registered peer log of 10 entries
    note = log.checkpoint(10)
    before = ledger_event_count()

    # when it submits its first checkpoint with old size 0
    response = submit(client, log, 0, 10)

    # then the answer is one cosignature/v1 line by this registry's key, valid on the note
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    [signature] = parse_signature_lines(response.content)
    cosigned = note + signature.line()
    checkpoint, cosigners = verify_checkpoint(
        cosigned, log.signer.vkey, [registry_witness().cosignature_vkey], quorum=1
    )
    assert (checkpoint.size, cosigners) == (10, [registry_witness().name])
    row = WitnessedCheckpoint.objects.get(peer=peer)
    assert (row.size, bytes(row.root), row.note) == (10, log.root(10), note)
    # witnessing is bookkeeping: no ledger event
    assert ledger_event_count() == before


def test_growth_with_a_consistency_proof_is_cosigned(client, log, peer):
    assert submit(client, log, 0, 10).status_code == 200
    log.append(7)

    response = submit(client, log, 10, 17)

    assert response.status_code == 200
    assert list(
        WitnessedCheckpoint.objects.filter(peer=peer)
        .order_by("size")
        .values_list("size", flat=True)
    ) == [10, 17]


def test_the_same_checkpoint_again_is_cosigned_again(client, log, peer):
    assert submit(client, log, 0, 10).status_code == 200

    response = submit(client, log, 10, 10)

    assert response.status_code == 200
    assert WitnessedCheckpoint.objects.filter(peer=peer).count() == 1


def test_stale_old_size_gets_409_with_the_latest_size(client, log, peer):
    assert submit(client, log, 0, 10).status_code == 200
    log.append(5)

    response = submit(client, log, 0, 15)

    assert response.status_code == 409
    assert response["Content-Type"] == SIZE_CONTENT_TYPE
    assert response.content == b"10\n"
    assert WitnessedCheckpoint.objects.filter(peer=peer).count() == 1


def test_malformed_body_is_400(client, peer):
    for body in [b"", b"old 01\n\n", b"new 3\n\nx", b"old 0\nnot-base64!\n\nx", b"\xff\xfe"]:
        response = post(client, body)
        assert response.status_code == 400, body
    assert not WitnessedCheckpoint.objects.exists()


def test_old_size_beyond_the_checkpoint_is_400(client, log, peer):
    response = post(client, encode_add_checkpoint(11, [bytes(32)], log.checkpoint(10)))
    assert response.status_code == 400


def test_a_proof_with_old_size_zero_is_400(client, log, peer):
    response = post(client, encode_add_checkpoint(0, [bytes(32)], log.checkpoint(10)))
    assert response.status_code == 400


def test_unknown_origin_is_404(client, log):
    response = submit(client, log, 0, 10)
    assert response.status_code == 404
    assert not WitnessedCheckpoint.objects.exists()


def test_suspended_peer_is_404(client, log, peer):
    Peer.objects.filter(pk=peer.pk).update(status=Peer.Status.SUSPENDED)
    assert submit(client, log, 0, 10).status_code == 404


def test_signature_by_another_key_is_403(client, log, peer):
    # a key with the same name but different key material is unknown: nothing verifies
    impostor = make_signer(log.origin, 99)
    note = sign_checkpoint(impostor, log.origin, 10, log.root(10))

    response = post(client, encode_add_checkpoint(0, [], note))

    assert response.status_code == 403
    assert not WitnessedCheckpoint.objects.exists()


def test_tampered_signature_is_403(client, log, peer):
    note = log.checkpoint(10)
    parsed = Note.parse(note)
    sig = parsed.signatures[0]
    forged = type(sig)(sig.name, sig.key_id, bytes(64))
    response = post(client, encode_add_checkpoint(0, [], parsed.text + "\n" + forged.line()))
    assert response.status_code == 403


def test_inconsistent_proof_is_422(client, log, peer):
    assert submit(client, log, 0, 10).status_code == 200
    log.append(6)

    response = submit(client, log, 10, 16, proof=[bytes(32)] * len(log.consistency(10, 16)))

    assert response.status_code == 422
    assert WitnessedCheckpoint.objects.filter(peer=peer).count() == 1


def test_a_forked_log_fails_the_proof_with_422(client, log, peer):
    # given the witness cosigned size 10
    assert submit(client, log, 0, 10).status_code == 200
    # when the log rewrites entry 3 and presents size 12 with an honest proof of its fork
    fork = FakeLog(log.origin)
    fork.append(12, prefix="fork")
    response = submit(client, fork, 10, 12)
    # then the proof cannot link it to what was cosigned
    assert response.status_code == 422


def test_rollback_is_refused_and_kept_as_evidence(client, log, peer):
    assert submit(client, log, 0, 10).status_code == 200
    log.append(10)
    assert submit(client, log, 10, 20).status_code == 200
    before = ledger_event_count()

    # a checkpoint of size 15, never cosigned, after 20
    response = submit(client, log, 15, 15)

    assert response.status_code == 409
    assert response.content == b"20\n"
    evidence = Evidence.objects.get(peer=peer)
    assert evidence.kind == Evidence.Kind.ROLLBACK
    assert evidence.first_note == log.checkpoint(20)
    assert evidence.second_note == log.checkpoint(15)
    # a rollback alone does not flag (anyone can replay an old checkpoint) and is not ledgered
    peer.refresh_from_db()
    assert peer.status == Peer.Status.ACTIVE
    assert ledger_event_count() == before


def test_resending_an_old_cosigned_checkpoint_is_409_without_evidence(client, log, peer):
    assert submit(client, log, 0, 10).status_code == 200
    log.append(10)
    assert submit(client, log, 10, 20).status_code == 200

    response = submit(client, log, 10, 10)

    assert response.status_code == 409
    assert response.content == b"20\n"
    assert not Evidence.objects.exists()


def test_equivocation_is_refused_with_the_conflicting_checkpoint_and_flags(client, log, peer):
    # given the witness cosigned size 10
    first = log.checkpoint(10)
    assert submit(client, log, 0, 10).status_code == 200
    before = ledger_event_count()

    # when the log signs a different root for the same size
    second = log.checkpoint(10, root=bytes(32))
    response = post(client, encode_add_checkpoint(10, [], second))

    # then 409 carries the checkpoint already cosigned, and both notes are kept
    assert response.status_code == 409
    assert response.content.decode() == first
    evidence = Evidence.objects.get(peer=peer)
    assert evidence.kind == Evidence.Kind.EQUIVOCATION
    assert (evidence.first_note, evidence.second_note, evidence.size) == (first, second, 10)
    peer.refresh_from_db()
    assert peer.status == Peer.Status.FLAGGED
    # exactly one ledger event: the peer was flagged
    assert ledger_event_count() == before + 1
    assert ledger_kinds()[-1] == "peer.flagged"
    # and a flagged log is no longer cosigned, even honestly
    log.append(2)
    assert submit(client, log, 10, 12).status_code == 403


def test_equivocation_with_a_stale_old_size_still_gets_the_size_hint(client, log, peer):
    assert submit(client, log, 0, 10).status_code == 200
    log.append(10)
    assert submit(client, log, 10, 20).status_code == 200

    response = post(client, encode_add_checkpoint(5, [], log.checkpoint(10, root=bytes(32))))

    assert response.status_code == 409
    assert response.content == b"20\n"
    assert Evidence.objects.get().kind == Evidence.Kind.EQUIVOCATION


def test_the_same_evidence_is_recorded_once(client, log, peer):
    assert submit(client, log, 0, 10).status_code == 200
    second = log.checkpoint(10, root=bytes(32))
    post(client, encode_add_checkpoint(10, [], second))
    Peer.objects.filter(pk=peer.pk).update(status=Peer.Status.ACTIVE)

    post(client, encode_add_checkpoint(10, [], second))

    assert Evidence.objects.count() == 1


def test_too_large_body_is_413(client, peer):
    response = post(client, b"old 0\n" + b"A" * 70_000)
    assert response.status_code == 413


def test_get_is_not_allowed(client):
    assert client.get("/add-checkpoint").status_code == 405
