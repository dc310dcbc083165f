"""The public ledger API: shapes, errors, caching, and the offline verifier's contract."""

import base64
import io
import json

import pytest

from ledger import merkle
from ledger.keys import registry_signer
from ledger.merkle import root_from_leaf_hashes, verify_consistency, verify_inclusion
from ledger.models import LedgerEntry
from ledger.services import checkpoint_create
from ledger.signing import generate_private_key
from ledger.verify import __main__ as cli
from tests.ledger.factories import append_events, integrate_all, ledger_with

pytestmark = pytest.mark.django_db

IMMUTABLE = "public, max-age=31536000, immutable"
N = 12


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def leaves() -> list[bytes]:
    leaves = ledger_with(N)
    checkpoint_create()
    return leaves


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "detail", "extra"}
    assert body["code"] == code


class TestCheckpoints:
    def test_latest_as_a_signed_note(self, api_client, leaves):
        response = api_client.get("/api/v1/ledger/checkpoint")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response["Cache-Control"] == "public, max-age=5"
        note = response.content.decode()
        checkpoint, _ = cli.verify_checkpoint(note, registry_signer().vkey)
        assert (checkpoint.size, checkpoint.root) == (N, root_from_leaf_hashes(leaves))

    def test_latest_as_json_and_by_size(self, api_client, leaves):
        latest = api_client.get("/api/v1/ledger/checkpoints/latest/")
        assert latest.status_code == 200
        body = latest.json()
        assert set(body) == {"origin", "size", "root", "note", "key_id", "created_at"}
        assert body["key_id"] == registry_signer().verifier.key_id.hex()
        assert body["size"] == N and body["root"] == b64(root_from_leaf_hashes(leaves))
        by_size = api_client.get(f"/api/v1/ledger/checkpoints/{N}/")
        assert by_size.json() == body
        assert by_size["Cache-Control"] == IMMUTABLE
        listed = api_client.get("/api/v1/ledger/checkpoints/").json()
        assert listed["count"] == 1 and listed["results"] == [body]

    def test_no_checkpoint_yet_and_unknown_size(self, api_client):
        assert_error(api_client.get("/api/v1/ledger/checkpoint"), 404, "checkpoint_not_found")
        assert_error(api_client.get("/api/v1/ledger/checkpoints/3/"), 404, "checkpoint_not_found")

    def test_verifier_key_as_text_and_json(self, api_client):
        text = api_client.get("/.well-known/gridproof/verifier-key")
        assert text.status_code == 200 and text["Content-Type"].startswith("text/plain")
        assert text.content.decode() == registry_signer().vkey + "\n"
        body = api_client.get("/api/v1/ledger/verifier-key/").json()
        assert body["vkey"] == registry_signer().vkey
        assert body["origin"] == "gridproof.localhost/registry"


class TestEntries:
    def test_one_entry(self, api_client, leaves):
        response = api_client.get("/api/v1/ledger/entries/3/")
        assert response.status_code == 200
        assert response["Cache-Control"] == IMMUTABLE
        body = response.json()
        entry = LedgerEntry.objects.get(seq=3)
        assert body["seq"] == 3
        assert base64.b64decode(body["event_b64"]) == bytes(entry.event)
        assert body["event"] == json.loads(bytes(entry.event))
        assert body["event"]["data"] == {"n": 3}
        assert base64.b64decode(body["leaf_hash"]) == leaves[3]
        assert base64.b64decode(body["chain"]) == bytes(entry.chain)
        assert body["kind"] == "test.happened" and body["actor"] == "system:test"

    def test_unknown_entry(self, api_client, leaves):
        assert_error(api_client.get(f"/api/v1/ledger/entries/{N}/"), 404, "ledger_entry_not_found")

    def test_a_full_range_is_immutable_and_links_the_next(self, api_client, leaves):
        response = api_client.get("/api/v1/ledger/entries/?start=2&limit=5")
        body = response.json()
        assert [e["seq"] for e in body["entries"]] == [2, 3, 4, 5, 6]
        assert body["next"].endswith("/api/v1/ledger/entries/?start=7&limit=5")
        assert response["Cache-Control"] == IMMUTABLE

    def test_the_end_of_the_log_is_short_lived(self, api_client, leaves):
        response = api_client.get("/api/v1/ledger/entries/?start=10&limit=5")
        body = response.json()
        assert [e["seq"] for e in body["entries"]] == [10, 11]
        assert body["next"] is None
        assert response["Cache-Control"] == "public, max-age=5"

    @pytest.mark.parametrize("query", ["limit=1001", "start=-1", "start=x", "nope=1"])
    def test_bad_ranges(self, api_client, query):
        assert_error(api_client.get(f"/api/v1/ledger/entries/?{query}"), 400, "invalid")


class TestProofs:
    def test_inclusion(self, api_client, leaves):
        response = api_client.get(f"/api/v1/ledger/proofs/inclusion/?seq=4&size={N}")
        assert response.status_code == 200
        assert response["Cache-Control"] == IMMUTABLE
        body = response.json()
        assert set(body) == {"seq", "size", "leaf_hash", "root", "proof"}
        proof = [base64.b64decode(h) for h in body["proof"]]
        assert proof == merkle.inclusion_proof(4, N, leaves)
        verify_inclusion(leaves[4], 4, N, proof, base64.b64decode(body["root"]))
        assert base64.b64decode(body["leaf_hash"]) == leaves[4]

    def test_consistency(self, api_client, leaves):
        body = api_client.get("/api/v1/ledger/proofs/consistency/?first=5&second=11").json()
        assert set(body) == {"first", "second", "proof"}
        proof = [base64.b64decode(h) for h in body["proof"]]
        roots = root_from_leaf_hashes(leaves[:5]), root_from_leaf_hashes(leaves[:11])
        verify_consistency(5, 11, proof, *roots)

    @pytest.mark.parametrize(
        ("url", "code"),
        [
            (f"inclusion/?seq=1&size={N + 1}", "tree_size_exceeded"),
            ("inclusion/?seq=5&size=5", "invalid_proof_request"),
            ("inclusion/?seq=1", "invalid"),
            (f"consistency/?first=3&second={N + 5}", "tree_size_exceeded"),
            ("consistency/?first=6&second=5", "invalid_proof_request"),
            ("consistency/?first=0&second=5", "invalid"),
        ],
    )
    def test_impossible_proofs_are_400(self, api_client, leaves, url, code):
        assert_error(api_client.get(f"/api/v1/ledger/proofs/{url}"), 400, code)


class TestSubjects:
    def test_history_with_proofs_against_the_checkpoint(self, api_client, leaves):
        response = api_client.get("/api/v1/ledger/subjects/bundle/2/")
        assert response.status_code == 200
        assert response["Cache-Control"] == "public, max-age=5"
        body = response.json()
        assert [e["seq"] for e in body["entries"]] == [2, 5, 8, 11]
        assert body["subject"] == "bundle:2" and body["size"] == N
        trust = cli.Trust.from_strings(registry_signer().vkey)
        result = cli.check_history(body, trust, ("bundle", "2"))
        assert [seq for seq, _ in result.entries] == [2, 5, 8, 11]

    def test_the_history_pages_with_a_cursor_against_one_checkpoint(self, api_client, leaves):
        # given: bundle:2 has entries 2, 5, 8 and 11
        # when
        first = api_client.get("/api/v1/ledger/subjects/bundle/2/?limit=3").json()
        second = api_client.get(
            f"/api/v1/ledger/subjects/bundle/2/?limit=3&after={first['next_after']}"
            f"&size={first['size']}"
        ).json()
        # then
        assert [e["seq"] for e in first["entries"]] == [2, 5, 8]
        assert (first["partial"], first["next_after"]) == (True, 8)
        assert [e["seq"] for e in second["entries"]] == [11]
        assert (second["partial"], second["next_after"], second["size"]) == (False, None, N)
        whole = api_client.get("/api/v1/ledger/subjects/bundle/2/?limit=4").json()
        assert (whole["partial"], whole["next_after"]) == (False, None)

    def test_a_page_for_a_size_never_signed_is_404(self, api_client, leaves):
        response = api_client.get(f"/api/v1/ledger/subjects/bundle/2/?size={N - 1}")
        assert_error(response, 404, "checkpoint_not_found")

    def test_the_verifier_reads_every_page(self, api_client, leaves, monkeypatch):
        # given: the registry answers two entries a page
        def two_a_page(url, net):
            path = url.removeprefix("http://registry.test")
            joined = path + ("&" if "?" in path else "?") + "limit=2"
            return api_client.get(joined).json()

        monkeypatch.setattr(cli, "fetch_json", two_a_page)
        # when
        bundle = cli.fetch_history_bundle("http://registry.test", ("bundle", "2"), cli.Net())
        # then
        assert [e["seq"] for e in bundle["entries"]] == [2, 5, 8, 11]
        trust = cli.Trust.from_strings(registry_signer().vkey)
        result = cli.check_history(bundle, trust, ("bundle", "2"))
        assert [seq for seq, _ in result.entries] == [2, 5, 8, 11]

    def test_a_subject_without_entries_has_an_empty_history(self, api_client, leaves):
        body = api_client.get("/api/v1/ledger/subjects/bundle/999/").json()
        assert body["entries"] == [] and body["subject"] == "bundle:999"

    @pytest.mark.parametrize("kind", ["nonsense", "thing", "Bundle", "bundle_"])
    def test_an_unknown_subject_kind_is_404_with_a_code(self, api_client, leaves, kind):
        response = api_client.get(f"/api/v1/ledger/subjects/{kind}/1/")
        assert_error(response, 404, "unknown_subject_kind")


def test_etag_answers_if_none_match_with_304(api_client, leaves):
    first = api_client.get("/api/v1/ledger/entries/1/")
    etag = first["ETag"]
    again = api_client.get("/api/v1/ledger/entries/1/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again["ETag"] == etag and again["Cache-Control"] == IMMUTABLE
    other = api_client.get("/api/v1/ledger/entries/2/", HTTP_IF_NONE_MATCH=etag)
    assert other.status_code == 200 and other["ETag"] != etag


@pytest.mark.django_db(transaction=True)
@pytest.mark.subject_index
def test_the_offline_verifier_checks_a_live_registry(live_server, tmp_path):
    """`python -m ledger.verify` against a running server: the contract of every endpoint.

    Each checkpoint ends with its subject-map entry: 6 entries + 1, then 5 more + 1."""
    # given
    ledger_with(6)
    old, _ = checkpoint_create()
    old_note = tmp_path / "old.note"
    old_note.write_text(old.note)
    append_events(5, start=6)
    integrate_all()
    checkpoint_create()
    key = ["--key", registry_signer().vkey]

    def run(*args: str) -> str:
        out = io.StringIO()
        status = cli.main([*args, *key], out=out)
        assert status == cli.EXIT_OK, out.getvalue()
        return out.getvalue()

    # when / then
    assert "size 13" in run("checkpoint", "--url", live_server.url)
    assert "inclusion OK: entry 7" in run("inclusion", "--url", live_server.url, "--seq", "7")
    assert "tree size 13 extends tree size 7" in run(
        "consistency", "--old", str(old_note), "--url", live_server.url
    )
    history = run("history", "--url", live_server.url, "--subject", "bundle:1")
    assert "history OK: complete: 4 entries about bundle:1, proven at checkpoint size 13" in history
    absent = run("history", "--url", live_server.url, "--subject", "bundle:404")
    assert "history OK: bundle:404 has no entry: proven absent at checkpoint size 13" in absent

    # and a checkpoint signed by another key than the one the auditor trusts fails
    _, impostor = generate_private_key("gridproof.localhost/registry")
    out = io.StringIO()
    status = cli.main(["checkpoint", "--url", live_server.url, "--key", impostor], out=out)
    assert status == cli.EXIT_FAILED
    assert "size 13 is not signed by the log key of that size" in out.getvalue()
