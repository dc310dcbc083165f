"""C2SP signed notes, checkpoints and cosignatures: published examples and round trips."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from ledger.merkle import CompactRange, leaf_hash
from ledger.signing import Signer, generate_private_key, sign_checkpoint
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

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "testvectors"
EXAMPLES = VECTORS / "signed-note" / "examples.json"

ORIGIN = "registry.example/gridproof"
SEED_LOG = bytes(range(32))
SEED_W1 = bytes(range(1, 33))
SEED_W2 = bytes(range(2, 34))


@pytest.fixture(scope="module")
def examples() -> dict:
    if not EXAMPLES.is_file():
        pytest.skip(f"shared test vectors not found at {VECTORS} (clone shared/ beside the repo)")
    return json.loads(EXAMPLES.read_text())


@pytest.fixture
def log() -> Signer:
    return Signer(ORIGIN, SEED_LOG)


@pytest.fixture
def witnesses() -> list[Signer]:
    return [Signer("witness.example/w1", SEED_W1), Signer("witness.example/w2", SEED_W2)]


def tree_root(n: int) -> bytes:
    tree = CompactRange()
    for i in range(n):
        tree.append(leaf_hash(f"event {i}".encode()))
    return tree.root()


def body_of(note: str) -> str:
    return note[: note.rindex("\n\n") + 1]


# ---------------------------------------------------------------- published examples


def test_example_notes_verify(examples):
    for example in examples["notes"]:
        key = VerifierKey.parse(example["vkey"])
        assert key.encode() == example["vkey"]
        assert key.key_id == key_id(key.name, key.key_type, key.public_key)
        note = verify_note(example["note"], [key])
        assert note.text == example["note"][: example["note"].rindex("\n\n") + 1]
        assert [s.name for s in note.signatures] == [key.name]
        # One changed character in the text must break the signature.
        forged = ("X" if example["note"][0] != "X" else "Y") + example["note"][1:]
        with pytest.raises(NoteError):
            verify_note(forged, [key])


def test_go_sumdb_checkpoint(examples):
    example = next(e for e in examples["notes"] if "checkpoint" in e)
    want = example["checkpoint"]
    checkpoint, cosigners = verify_checkpoint(
        example["note"], example["vkey"], origin=want["origin"]
    )
    assert (checkpoint.origin, checkpoint.size) == (want["origin"], want["size"])
    assert checkpoint.root == base64.b64decode(want["root_base64"])
    assert cosigners == []
    assert checkpoint.body() == body_of(example["note"])
    # Without an explicit origin the key name is expected, and it differs here.
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(example["note"], example["vkey"])


def test_example_key_pair(examples):
    for pair in examples["key_pairs"]:
        signer = Signer.from_private_key(pair["skey"])
        assert signer.vkey == pair["vkey"]
        assert signer.private_key() == pair["skey"]
        note = signer.sign_note("hello\n")
        assert verify_note(note, [VerifierKey.parse(pair["vkey"])]).text == "hello\n"


def test_cosignature_v1_vector(examples):
    for vector in examples["cosignature_v1"]:
        raw = base64.b64decode(vector["signature_base64"])
        sig = NoteSignature.parse(f"\u2014 witness.example/w1 {vector['signature_base64']}")
        assert sig.key_id == raw[:4] == bytes.fromhex("646846b9")
        assert len(sig.signature) == 8 + 64
        assert sig.timestamp == vector["timestamp"] == 1727964367
        assert sig.line() == f"\u2014 witness.example/w1 {vector['signature_base64']}\n"


def test_key_id_definition():
    pub = bytes(32)
    want = hashlib.sha256(b"name\n\x04" + pub).digest()[:4]
    assert key_id("name", 0x04, pub) == want
    assert key_id("name", 0x01, pub) != want


# ---------------------------------------------------------------- keys


def test_generate_private_key_round_trip():
    skey, vkey = generate_private_key("registry.example/dev")
    signer = Signer.from_private_key(skey)
    assert signer.vkey == vkey and signer.name == "registry.example/dev"
    assert skey.startswith("PRIVATE+KEY+registry.example/dev+")
    assert VerifierKey.parse(vkey).key_type == 0x01
    assert VerifierKey.parse(signer.cosignature_vkey).key_type == 0x04
    assert signer.cosignature_verifier.public_key == signer.verifier.public_key
    assert signer.cosignature_verifier.key_id != signer.verifier.key_id
    assert generate_private_key("registry.example/dev")[0] != skey


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "name+0000",
        "name+zzzzzzzz+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs",
        "Log+00000000+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs",  # wrong key id
        "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekar",  # truncated key
        "Log+2271c621+Bu!!",  # not base64
        "Log+2271c621+AwEB",  # unknown key type
        "Lo g+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs",  # space in name
    ],
)
def test_bad_verifier_keys(vkey):
    with pytest.raises(NoteError):
        VerifierKey.parse(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+Log+2271c621",
        "PRIVATE+KEY+Log+00000000+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ",  # wrong id
        "PRIVATE+KEY+Log+2271c621+AtEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ",  # type 0x02
        "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs",  # a public key
    ],
)
def test_bad_private_keys(skey):
    with pytest.raises(NoteError):
        Signer.from_private_key(skey)


# ---------------------------------------------------------------- notes


def test_sign_note_layout(log):
    note = log.sign_note("line one\n\nline three\n")
    text, sig = note.rsplit("\n\n", 1)
    assert text == "line one\n\nline three"
    assert sig.startswith("\u2014 registry.example/gridproof ") and sig.endswith("\n")
    parsed = Note.parse(note)
    assert parsed.text == "line one\n\nline three\n"
    assert parsed.encode() == note
    with pytest.raises(NoteError):
        log.sign_note("no final newline")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda n: n.replace("\n\n", "\n", 1),  # no blank line
        lambda n: n[:-1],  # no final newline
        lambda n: n.replace("\u2014 ", "- ", 1),  # not an em dash
        lambda n: n.replace("\u2014 ", "\u2014", 1),
        lambda n: n.replace("size", "si\tze", 1),  # control character
        lambda n: n + "\n",  # empty signature line
        lambda n: n[: n.rindex(" ") + 1] + "!!!!\n",  # bad base64
        lambda n: n[: n.rindex(" ") + 1] + "AAAA\n",  # too short
        lambda n: n.replace("registry.example/gridproof ", "registry example ", 1),
    ],
)
def test_malformed_notes_rejected(log, mutate):
    note = log.sign_note("size\n")
    verify_note(note, [log.verifier])
    with pytest.raises(NoteError):
        verify_note(mutate(note), [log.verifier])


def test_unknown_keys_ignored_known_bad_key_rejects(log, witnesses):
    stranger = Signer("stranger.example", bytes(32))
    note = log.sign_note("hello\n")
    note += stranger.signature("hello\n").line()
    assert [s.name for s in verify_note(note, [log.verifier]).signatures] == [log.name]
    with pytest.raises(NoteError, match="not signed by any known key"):
        verify_note(note, [witnesses[0].verifier])
    # Same name, different key: not the key we know, so ignored, then nothing verifies.
    impostor = Signer(log.name, bytes(32))
    with pytest.raises(NoteError, match="not signed by any known key"):
        verify_note(impostor.sign_note("hello\n"), [log.verifier])
    # A known key whose signature does not verify rejects the whole note.
    bad = NoteSignature(log.name, log.verifier.key_id, bytes(64))
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note("hello\n\n" + stranger.signature("hello\n").line() + bad.line(), [log.verifier])


def test_too_many_signatures_rejected(log):
    note = log.sign_note("hello\n")
    extra = Signer("x.example", bytes(32)).signature("hello\n").line()
    verify_note(note + extra * 99, [log.verifier])
    with pytest.raises(NoteError, match="more than"):
        verify_note(note + extra * 100, [log.verifier])


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_body_round_trip():
    root = tree_root(5)
    cp = Checkpoint(ORIGIN, 5, root, ("ext one",))
    body = cp.body()
    assert body == f"{ORIGIN}\n5\n{base64.b64encode(root).decode()}\next one\n"
    assert Checkpoint.parse(body) == cp
    assert Checkpoint.parse(Checkpoint(ORIGIN, 0, tree_root(0)).body()).size == 0


@pytest.mark.parametrize(
    "body",
    [
        "",
        "origin\n5\n",
        "origin\n5\nAAAA\n",  # root not 32 bytes
        "origin\n05\n{root}\n",  # leading zero
        "origin\n+5\n{root}\n",
        "origin\n-5\n{root}\n",
        "origin\n\u0665\n{root}\n",  # a non-ASCII digit
        "origin\n 5\n{root}\n",
        "origin\n18446744073709551616\n{root}\n",  # 2**64
        "\n5\n{root}\n",  # empty origin
        "origin\n5\n{root}\n\n",  # empty extension line
        "origin\n5\n{root}",  # no final newline
    ],
)
def test_bad_checkpoint_bodies(body):
    root = base64.b64encode(tree_root(5)).decode()
    with pytest.raises(NoteError):
        Checkpoint.parse(body.format(root=root))


def test_sign_checkpoint_round_trip(log):
    root = tree_root(42)
    note = sign_checkpoint(log, ORIGIN, 42, root)
    checkpoint, cosigners = verify_checkpoint(note, log.vkey)
    assert checkpoint == Checkpoint(ORIGIN, 42, root)
    assert cosigners == []
    checkpoint, _ = verify_checkpoint(note, log.verifier, origin=ORIGIN)
    assert checkpoint.size == 42


def test_checkpoint_rejections(log):
    root = tree_root(42)
    note = sign_checkpoint(log, ORIGIN, 42, root)
    tampered_size = note.replace("\n42\n", "\n43\n", 1)
    tampered_root = note.replace(
        base64.b64encode(root).decode(), base64.b64encode(tree_root(41)).decode()
    )
    other_key = Signer(ORIGIN, bytes(32))
    head, b64sig = note.rstrip("\n").rsplit(" ", 1)
    truncated = f"{head} {base64.b64encode(base64.b64decode(b64sig)[:-1]).decode()}\n"
    for bad in (tampered_size, tampered_root, truncated):
        with pytest.raises(NoteError):
            verify_checkpoint(bad, log.vkey)
    with pytest.raises(NoteError):  # wrong key
        verify_checkpoint(note, other_key.vkey)
    with pytest.raises(NoteError, match="origin"):  # validly signed, but for another log
        verify_checkpoint(sign_checkpoint(log, "other.example/log", 42, root), log.vkey)
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(note, log.vkey, origin="registry.example/other")
    with pytest.raises(NoteError):  # signed note whose text is not a checkpoint
        verify_checkpoint(log.sign_note("just text\n"), log.vkey)


# ---------------------------------------------------------------- cosignatures


def test_cosignature_quorum(log, witnesses):
    w1, w2 = witnesses
    note = sign_checkpoint(log, ORIGIN, 7, tree_root(7))
    body = body_of(note)
    line1 = w1.cosign(body, 1_700_000_000)
    assert NoteSignature.parse(line1.rstrip("\n")).timestamp == 1_700_000_000
    keys = [w1.cosignature_vkey, w2.cosignature_vkey]

    cosigned = note + line1
    assert verify_checkpoint(cosigned, log.vkey, keys, quorum=1)[1] == [w1.name]
    with pytest.raises(NoteError, match="quorum"):
        verify_checkpoint(cosigned, log.vkey, keys, quorum=2)
    # The same witness twice is still one witness.
    with pytest.raises(NoteError, match="quorum"):
        verify_checkpoint(cosigned + w1.cosign(body, 1_700_000_001), log.vkey, keys, quorum=2)
    both = cosigned + w2.cosign(body, 1_700_000_005)
    assert verify_checkpoint(both, log.vkey, keys, quorum=2)[1] == [w1.name, w2.name]
    # A plain (0x01) key is a different key id: the cosignature is not counted for it.
    with pytest.raises(NoteError, match="quorum"):
        verify_checkpoint(both, log.vkey, [w1.vkey, w2.vkey], quorum=1)
    # The log's signature never counts towards the witness quorum.
    with pytest.raises(NoteError, match="quorum"):
        verify_checkpoint(note, log.vkey, [log.vkey, w1.cosignature_vkey], quorum=1)


def test_cosignature_must_match_checkpoint(log, witnesses):
    w1 = witnesses[0]
    note = sign_checkpoint(log, ORIGIN, 7, tree_root(7))
    other_body = Checkpoint(ORIGIN, 8, tree_root(8)).body()
    with pytest.raises(NoteError, match="invalid signature"):
        verify_checkpoint(note + w1.cosign(other_body, 5), log.vkey, [w1.cosignature_vkey])
    # A changed timestamp breaks the signature too: the time is part of the message.
    line = w1.cosign(body_of(note), 5).rstrip("\n")
    sig = NoteSignature.parse(line)
    moved = NoteSignature(sig.name, sig.key_id, (6).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(NoteError, match="invalid signature"):
        verify_checkpoint(note + moved.line(), log.vkey, [w1.cosignature_vkey])
    with pytest.raises(NoteError):
        w1.cosign(body_of(note), 2**63)
    with pytest.raises(NoteError):
        w1.cosign("not a checkpoint\n", 5)


def test_quorum_larger_than_witness_set_is_an_error(log, witnesses):
    note = sign_checkpoint(log, ORIGIN, 7, tree_root(7))
    with pytest.raises(NoteError, match="quorum"):
        verify_checkpoint(note, log.vkey, [witnesses[0].cosignature_vkey], quorum=2)


# ---------------------------------------------------------------- tlog-scales interop


def test_tlog_scales_reads_our_checkpoints_and_cosignatures(log, witnesses):
    ts_signing = pytest.importorskip("tlog_scales.signing")
    from tlog_scales import tlog as ts_tlog

    w1 = witnesses[0]
    root = tree_root(11)
    note = sign_checkpoint(log, ORIGIN, 11, root)
    note += w1.cosign(body_of(note), 1_727_964_367)
    theirs = ts_tlog.Checkpoint.from_text(note)
    assert (theirs.origin, theirs.size, theirs.root_hash) == (ORIGIN, 11, root)
    theirs.verify(ts_signing.Vkey.from_string(log.vkey))
    cosigner = ts_signing.Vkey.from_string(w1.cosignature_vkey)
    assert len(ts_signing.VkeySet(cosigner).verify(theirs.signatures, theirs)) == 1
    assert cosigner.serialize() == w1.cosignature_vkey


def test_we_read_tlog_scales_checkpoints():
    ts_signing = pytest.importorskip("tlog_scales.signing")
    from tlog_scales import tlog as ts_tlog

    signer = ts_signing.PlainEd25519Signer(ORIGIN, SEED_LOG)
    root = tree_root(3)
    text = ts_tlog.Checkpoint.make_signed(ORIGIN, 3, root, [signer]).serialize()
    checkpoint, _ = verify_checkpoint(text, signer.vkey.serialize())
    assert (checkpoint.size, checkpoint.root) == (3, root)
    assert signer.vkey.serialize() == Signer(ORIGIN, SEED_LOG).vkey
