"""A mirror served in the ledger API's shapes, checked by the offline verifier."""

import base64
import io
import urllib.parse

import pytest
from django.test import Client

import ledger.verify.__main__ as verifier
from federation.replication import peer_replicate
from ledger.merkle import leaf_hash
from ledger.verify.rfc9162 import verify_consistency, verify_inclusion
from tests.federation.factories import peer_for_log
from tests.federation.fakes import FakeLog, FakePeerServer

pytestmark = pytest.mark.django_db

API = "/api/v1/federation/mirrors/peer.example/log"
ALIAS = "http://testserver/mirrors/peer.example/log"


@pytest.fixture
def log() -> FakeLog:
    log = FakeLog()
    log.append(300)
    return log


@pytest.fixture
def mirrored(log, settings):
    settings.FEDERATION_REPLICATION_PAGE_SIZE = 100
    server = FakePeerServer(log).start()
    try:
        peer = peer_for_log(log, base_url=server.url, is_mirror=True)
        server.served_size = 200
        peer_replicate(peer_id=peer.pk)
        server.served_size = None
        peer_replicate(peer_id=peer.pk)
        yield peer
    finally:
        server.stop()


def unb64(value: str) -> bytes:
    return base64.b64decode(value)


def test_mirror_list_and_checkpoint(client, log, mirrored):
    assert client.get("/api/v1/federation/mirrors/").json() == [
        {
            "origin": log.origin,
            "size": 300,
            "root": base64.b64encode(log.root()).decode(),
            "updated_at": client.get("/api/v1/federation/mirrors/").json()[0]["updated_at"],
        }
    ]
    response = client.get(f"{API}/checkpoint")
    assert response.status_code == 200
    assert response.content.decode() == log.checkpoint()


def test_mirror_entries_and_proofs(client, log, mirrored):
    page = client.get(f"{API}/entries/", {"start": 250, "limit": 100}).json()
    assert page["next"] is None
    assert [unb64(e["event_b64"]) for e in page["entries"]] == log.events[250:]
    assert [unb64(e["leaf_hash"]) for e in page["entries"]] == log.leaves[250:]
    full = client.get(f"{API}/entries/", {"start": 0, "limit": 10}).json()
    assert full["next"].endswith("start=10&limit=10")

    entry = client.get(f"{API}/entries/42/").json()
    assert unb64(entry["event_b64"]) == log.events[42]

    proof = client.get(f"{API}/proofs/inclusion/", {"seq": 42, "size": 300}).json()
    verify_inclusion(
        leaf_hash(log.events[42]), 42, 300, [unb64(h) for h in proof["proof"]], log.root()
    )
    assert unb64(proof["root"]) == log.root()

    proof = client.get(f"{API}/proofs/consistency/", {"first": 77, "second": 300}).json()
    verify_consistency(77, 300, [unb64(h) for h in proof["proof"]], log.root(77), log.root())


def test_mirror_errors(client, mirrored):
    assert client.get("/api/v1/federation/mirrors/nobody.example/checkpoint").status_code == 404
    assert client.get(f"{API}/entries/300/").status_code == 404
    response = client.get(f"{API}/proofs/inclusion/", {"seq": 1, "size": 301})
    assert response.status_code == 400
    assert response.json()["code"] == "mirror_proof_unavailable"
    assert client.get(f"{API}/proofs/consistency/", {"first": 0, "second": 3}).status_code == 400


@pytest.fixture
def via_test_client(monkeypatch):
    """The offline verifier's HTTP fetch, answered by the Django test client."""
    django = Client()

    def fetch(url, net, accept="application/json"):
        parts = urllib.parse.urlsplit(url)
        response = django.get(
            parts.path, dict(urllib.parse.parse_qsl(parts.query)), HTTP_ACCEPT=accept
        )
        if response.status_code != 200:
            raise verifier.VerificationFailed(f"{url}: HTTP {response.status_code}")
        return response.content

    monkeypatch.setattr(verifier, "fetch", fetch)


def run(*args) -> tuple[int, str]:
    out = io.StringIO()
    return verifier.main(list(args), out=out), out.getvalue()


def test_offline_verifier_checks_the_mirror(log, mirrored, via_test_client, tmp_path):
    key = log.signer.vkey

    status, out = run("checkpoint", "--key", key, "--url", ALIAS)
    assert status == 0, out
    assert "size 300" in out

    status, out = run("inclusion", "--key", key, "--url", ALIAS, "--seq", "123")
    assert status == 0, out

    old = tmp_path / "old.note"
    old.write_text(log.checkpoint(200))
    status, out = run("consistency", "--key", key, "--old", str(old), "--url", ALIAS)
    assert status == 0, out
    assert "extends tree size 200" in out


def test_offline_verifier_rejects_a_mirror_under_another_key(log, mirrored, via_test_client):
    other = FakeLog(log.origin, seed_byte=9)
    status, out = run("checkpoint", "--key", other.signer.vkey, "--url", ALIAS)
    assert status == 1
    assert "FAILED" in out


def test_mirror_proofs_equal_the_reference_at_every_shape(log, mirrored):
    # Subtrees below MIRROR_LOWEST_STORED_LEVEL are recomputed from the entries: every
    # proof must still be exactly the reference implementation's.
    from federation.selectors import mirror_consistency_proof, mirror_head, mirror_inclusion_proof
    from ledger.merkle import consistency_proof, inclusion_proof

    head = mirror_head(origin=log.origin)
    for size in (1, 2, 15, 16, 17, 31, 33, 200, 255, 256, 257, 300):
        for seq in sorted({0, size // 3, size // 2, size - 1}):
            got = mirror_inclusion_proof(head=head, seq=seq, size=size)
            assert list(got.proof) == inclusion_proof(seq, size, log.leaves), (seq, size)
        for first in sorted({1, max(1, size // 2), max(1, size - 1), size}):
            got = mirror_consistency_proof(head=head, first=first, second=size)
            assert list(got.proof) == consistency_proof(first, size, log.leaves), (first, size)


def test_entries_read_back_across_chunk_edges(log, mirrored):
    # given the mirror stored [0, 200) and then [200, 300) in chunks of up to 16 entries,
    # the one before 200 short (200 is no multiple of 16)
    from federation.selectors import mirror_entries, mirror_entry, mirror_head

    head = mirror_head(origin=log.origin)
    for start, end in [(0, 300), (190, 210), (199, 201), (200, 201), (15, 17), (290, 400)]:
        # when a range is read
        got = mirror_entries(head=head, start=start, end=end)
        # then it is exactly the log's entries, in order, up to the mirrored size
        assert [e.seq for e in got] == list(range(start, min(end, 300)))
        assert [e.event for e in got] == log.events[start:end]
    assert mirror_entry(head=head, seq=200).event == log.events[200]
    assert mirror_entry(head=head, seq=199).event == log.events[199]
