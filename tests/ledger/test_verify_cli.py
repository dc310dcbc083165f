"""The offline verifier CLI (python -m ledger.verify): files, a local HTTP registry, isolation."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ledger.merkle import (
    CompactRange,
    consistency_proof_ranges,
    inclusion_proof_ranges,
    leaf_hash,
    range_hash,
    range_hashes,
)
from ledger.signing import Signer, sign_checkpoint
from ledger.verify.__main__ import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Trust,
    VerificationFailed,
    check_consistency,
    check_history,
    check_inclusion,
    main,
)
from ledger.verify.subject_map import INDEX_EVENT, MAP_NAME, SubjectMap, entry_subjects

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "registry.example/gridproof"
SIZE = 37
OLD_SIZE = 20


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def event(i: int) -> bytes:
    doc = {
        "type": ("certificate.issued", "certificate.transferred", "certificate.retired")[i % 3],
        "at": f"2025-03-01T10:{i:02d}:00Z",
        "actor": "user:7",
        "subject": [f"bundle:{i % 5}", f"account:{i % 3}"],
        "data": {"volume_wh": 1000 + i},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


INDEX_AT = (OLD_SIZE - 1, SIZE - 1)
"""Where the log commits its subject map: the last entry of each checkpoint's tree."""


def index_event(size: int, smap: SubjectMap) -> bytes:
    doc = {
        "type": INDEX_EVENT,
        "at": "2025-03-01T11:00:00Z",
        "actor": "system:index",
        "subject": [],
        "data": {"map": MAP_NAME, "size": size, "root": b64(smap.root()), "subjects": 8},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def events_with_index() -> list[bytes]:
    smap, events = SubjectMap(), []
    for i in range(SIZE):
        events.append(index_event(i, smap) if i in INDEX_AT else event(i))
        smap.add(i, events[-1])
    return events


@dataclass
class Ledger:
    """A small signed log built with merkle.py and signing.py, as the registry would."""

    log: Signer = field(default_factory=lambda: Signer(ORIGIN, bytes(range(32))))
    witness: Signer = field(default_factory=lambda: Signer("witness.example/w1", bytes(32)))
    events: list[bytes] = field(default_factory=events_with_index)
    nodes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        tree = CompactRange()
        for e in self.events:
            for level, index, h in tree.append(leaf_hash(e)):
                self.nodes[(level, index)] = h

    def checkpoint(self, size: int = SIZE, cosign: bool = True) -> str:
        note = sign_checkpoint(self.log, ORIGIN, size, range_hash(0, size, self.nodes))
        if cosign:
            note += self.witness.cosign(note[: note.rindex("\n\n") + 1], 1_740_000_000 + size)
        return note

    def proof(self, seq: int, size: int = SIZE) -> list[str]:
        return [b64(h) for h in range_hashes(inclusion_proof_ranges(seq, size), self.nodes)]

    def inclusion_bundle(self, seq: int, size: int = SIZE) -> dict:
        return {
            "checkpoint": self.checkpoint(size),
            "seq": seq,
            "event_b64": b64(self.events[seq]),
            "proof": self.proof(seq, size),
        }

    def consistency_doc(self, first: int, second: int) -> dict:
        ranges = consistency_proof_ranges(first, second)
        return {
            "first": first,
            "second": second,
            "proof": [b64(h) for h in range_hashes(ranges, self.nodes)],
        }

    def history_bundle(self, subject_id: int, size: int = SIZE) -> dict:
        key = f"bundle:{subject_id}"
        seqs = [i for i in range(size) if key in entry_subjects(self.events[i])]
        entries = [
            {"seq": i, "event_b64": b64(self.events[i]), "proof": self.proof(i, size)} for i in seqs
        ]
        smap = SubjectMap()
        for i in range(size - 1):
            smap.add(i, self.events[i])
        completeness = {
            "index_entry": {
                "seq": size - 1,
                "event_b64": b64(self.events[size - 1]),
                "proof": self.proof(size - 1, size),
            },
            "subjects": {key: smap.proof(key).as_json()},
        }
        return {
            "checkpoint": self.checkpoint(size),
            "entries": entries,
            "completeness": completeness,
        }


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def write(tmp_path: Path, name: str, content) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def keys(ledger: Ledger, quorum: int = 1) -> list[str]:
    return [
        "--key",
        ledger.log.vkey,
        "--witness-key",
        ledger.witness.cosignature_vkey,
        "--quorum",
        str(quorum),
    ]


# ---------------------------------------------------------------- checkpoint


def test_checkpoint_file(ledger, tmp_path):
    path = write(tmp_path, "cp.note", ledger.checkpoint())
    code, out = run("checkpoint", *keys(ledger), "--file", path)
    assert code == EXIT_OK, out
    assert f"checkpoint OK: {ORIGIN} size {SIZE}" in out
    assert "cosigned by witness.example/w1 (1 of quorum 1)" in out
    assert run("checkpoint", "--key", ledger.log.vkey, "--file", path)[0] == EXIT_OK


def test_checkpoint_file_failures(ledger, tmp_path):
    good = ledger.checkpoint()
    uncosigned = write(tmp_path, "plain.note", ledger.checkpoint(cosign=False))
    tampered = write(tmp_path, "bad.note", good.replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n"))
    path = write(tmp_path, "cp.note", good)
    stranger = Signer(ORIGIN, bytes([9]) * 32)
    assert run("checkpoint", *keys(ledger), "--file", uncosigned)[0] == EXIT_FAILED
    assert run("checkpoint", *keys(ledger), "--file", tampered)[0] == EXIT_FAILED
    code, out = run("checkpoint", "--key", stranger.vkey, "--file", path)
    assert code == EXIT_FAILED and out.startswith("FAILED:")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["checkpoint", "--key", "not-a-key", "--file", "x"],
        ["checkpoint", "--file", "x"],  # no --key
        ["checkpoint", "--key", "{vkey}"],  # neither --file nor --url
        ["checkpoint", "--key", "{vkey}", "--file", "/nonexistent/cp.note"],
        ["checkpoint", "--key", "{vkey}", "--quorum", "1", "--file", "x"],  # no witnesses
        ["checkpoint", "--key", "{vkey}", "--url", "file:///etc/passwd"],
        ["checkpoint", "--key", "{vkey}", "--quorum", "-1", "--file", "x"],
        ["inclusion", "--key", "{vkey}", "--url", "http://127.0.0.1:9"],  # no --seq
        ["history", "--key", "{vkey}", "--url", "http://127.0.0.1:9"],  # no --subject
        ["history", "--key", "{vkey}", "--url", "http://127.0.0.1:9", "--subject", "nocolon"],
    ],
)
def test_usage_errors(ledger, argv):
    argv = [a.replace("{vkey}", ledger.log.vkey) for a in argv]
    assert run(*argv)[0] == EXIT_USAGE


# ---------------------------------------------------------------- inclusion


def test_inclusion_file(ledger, tmp_path):
    path = write(tmp_path, "proof.json", ledger.inclusion_bundle(17))
    code, out = run("inclusion", *keys(ledger), "--file", path)
    assert code == EXIT_OK, out
    assert f"inclusion OK: entry 17 (leaf {leaf_hash(event(17)).hex()[:16]}" in out
    assert "certificate.retired" in out


def test_check_inclusion_function(ledger):
    trust = Trust.from_strings(ledger.log.vkey, [ledger.witness.cosignature_vkey], 1)
    for seq in (0, 1, 16, SIZE - 1):
        result = check_inclusion(ledger.inclusion_bundle(seq), trust)
        assert (result.seq, result.event) == (seq, ledger.events[seq])
    bundle = ledger.inclusion_bundle(31, size=32)
    assert check_inclusion(bundle, trust).checkpoint.checkpoint.size == 32


@pytest.mark.parametrize(
    "change",
    [
        {"event_b64": b64(event(4))},  # another event
        {"event_b64": b64(event(5) + b" ")},  # one byte more
        {"seq": 6},  # proof is for 5
        {"seq": SIZE + 3},  # beyond the checkpoint
        {"proof": []},
        {"proof": "not a list"},
        {"event_b64": "%%%"},
        {"seq": "5"},
    ],
)
def test_inclusion_file_rejections(ledger, tmp_path, change):
    bundle = {**ledger.inclusion_bundle(5), **change}
    path = write(tmp_path, "proof.json", bundle)
    assert run("inclusion", *keys(ledger), "--file", path)[0] == EXIT_FAILED


def test_inclusion_proof_for_another_tree_size_fails(ledger, tmp_path):
    bundle = ledger.inclusion_bundle(5)
    bundle["proof"] = ledger.proof(5, size=SIZE - 1)
    assert run("inclusion", *keys(ledger), "--file", write(tmp_path, "p.json", bundle))[0] == 1
    garbage = write(tmp_path, "garbage.json", "{not json")
    assert run("inclusion", *keys(ledger), "--file", garbage)[0] == EXIT_FAILED


# ---------------------------------------------------------------- consistency


def test_consistency_files(ledger, tmp_path):
    old = write(tmp_path, "old.note", ledger.checkpoint(OLD_SIZE))
    new = write(tmp_path, "new.note", ledger.checkpoint(SIZE))
    proof = write(tmp_path, "c.json", ledger.consistency_doc(OLD_SIZE, SIZE))
    code, out = run("consistency", *keys(ledger), "--old", old, "--new", new, "--proof", proof)
    assert code == EXIT_OK, out
    assert f"consistency OK: tree size {SIZE} extends tree size {OLD_SIZE}" in out
    # Same checkpoint twice: nothing to prove.
    assert run("consistency", *keys(ledger), "--old", new, "--new", new)[0] == EXIT_OK
    # Different sizes without a proof: the user must supply one.
    assert run("consistency", *keys(ledger), "--old", old, "--new", new)[0] == EXIT_USAGE
    # Reversed order: the "new" tree is older.
    code, out = run("consistency", *keys(ledger), "--old", new, "--new", old, "--proof", proof)
    assert code == EXIT_FAILED


def test_consistency_rejections(ledger, tmp_path):
    old_note = ledger.checkpoint(OLD_SIZE)
    new_note = ledger.checkpoint(SIZE)
    trust = Trust.from_strings(ledger.log.vkey)
    doc = ledger.consistency_doc(OLD_SIZE, SIZE)
    proof = [base64.b64decode(h) for h in doc["proof"]]
    check_consistency(old_note, new_note, proof, trust)

    forked = Ledger(events=[event(i) if i != 3 else b"rewritten" for i in range(SIZE)])
    # The honest proof still yields the old root, but not the forked new one.
    with pytest.raises(VerificationFailed, match="root2"):
        check_consistency(old_note, forked.checkpoint(SIZE), proof, trust)
    with pytest.raises(VerificationFailed):
        check_consistency(old_note, new_note, proof[:-1], trust)
    with pytest.raises(VerificationFailed, match="EQUIVOCATION"):
        check_consistency(ledger.checkpoint(SIZE), forked.checkpoint(SIZE), [], trust)

    old = write(tmp_path, "old.note", old_note)
    new = write(tmp_path, "new.note", new_note)
    wrong_sizes = write(tmp_path, "c.json", ledger.consistency_doc(OLD_SIZE - 1, SIZE))
    argv = ("consistency", *keys(ledger), "--old", old, "--new", new, "--proof", wrong_sizes)
    code, out = run(*argv)
    assert code == EXIT_FAILED and "not 20 -> 37" in out


# ---------------------------------------------------------------- history


def test_history_file(ledger, tmp_path):
    bundle = ledger.history_bundle(3)
    bundle["entries"].reverse()  # the order on the wire does not matter
    code, out = run("history", *keys(ledger), "--file", write(tmp_path, "h.json", bundle))
    assert code == EXIT_OK, out
    lines = [line.split() for line in out.splitlines() if line.startswith("  #")]
    assert [line[0] for line in lines] == ["#3", "#8", "#13", "#18", "#23", "#28", "#33"]
    assert lines[0][1:] == ["2025-03-01T10:03:00Z", "certificate.issued"]
    assert "history OK: complete: 7 entries about bundle:3, proven at checkpoint size 37" in out


def test_history_rejections(ledger):
    trust = Trust.from_strings(ledger.log.vkey)
    bundle = ledger.history_bundle(2)
    assert len(check_history(bundle, trust, ("bundle", "2")).entries) == 7
    with pytest.raises(VerificationFailed, match="about bundle:2, account:2, not bundle:4"):
        check_history(bundle, trust, ("bundle", "4"))
    duplicated = {**bundle, "entries": bundle["entries"] + bundle["entries"][:1]}
    with pytest.raises(VerificationFailed, match="twice"):
        check_history(duplicated, trust)
    swapped = json.loads(json.dumps(bundle))
    swapped["entries"][1]["event_b64"] = swapped["entries"][2]["event_b64"]
    with pytest.raises(VerificationFailed, match="inclusion of entry"):
        check_history(swapped, trust)
    with pytest.raises(VerificationFailed):
        check_history({**bundle, "entries": None}, trust)


# ---------------------------------------------------------------- over HTTP


class Routes(dict):
    """path?query -> (status, content type, body, delay seconds, send length)."""

    def add(self, path, body, status=200, ctype="application/json", delay=0.0, length=True):
        if not isinstance(body, bytes):
            body = (body if isinstance(body, str) else json.dumps(body)).encode()
        self[path] = (status, ctype, body, delay, length)


@pytest.fixture
def registry():
    routes = Routes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, ctype, body, delay, length = routes.get(
                self.path, (404, "text/plain", b"not found", 0.0, True)
            )
            if delay:
                time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (timeout tests)
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", routes
    server.shutdown()
    server.server_close()


def serve_ledger(ledger: Ledger, routes: Routes, size: int = SIZE) -> None:
    routes.add("/api/v1/ledger/checkpoint", ledger.checkpoint(size), ctype="text/plain")
    for seq in range(size):
        routes.add(
            f"/api/v1/ledger/entries/{seq}/", {"seq": seq, "event_b64": b64(ledger.events[seq])}
        )
        proof = {
            "seq": seq,
            "size": size,
            "leaf_hash": b64(leaf_hash(ledger.events[seq])),
            "root": b64(range_hash(0, size, ledger.nodes)),
            "proof": ledger.proof(seq, size),
        }
        routes.add(f"/api/v1/ledger/proofs/inclusion/?seq={seq}&size={size}", proof)
    routes.add(
        f"/api/v1/ledger/proofs/consistency/?first={OLD_SIZE}&second={size}",
        ledger.consistency_doc(OLD_SIZE, size),
    )
    for subject in range(5):
        routes.add(
            f"/api/v1/ledger/subjects/bundle/{subject}/", ledger.history_bundle(subject, size)
        )


def test_http_happy_paths(ledger, registry, tmp_path):
    base, routes = registry
    serve_ledger(ledger, routes)
    code, out = run("checkpoint", *keys(ledger), "--url", base)
    assert code == EXIT_OK and f"size {SIZE}" in out, out
    code, out = run("inclusion", *keys(ledger), "--url", base, "--seq", "9")
    assert code == EXIT_OK and "inclusion OK: entry 9" in out, out
    old = write(tmp_path, "old.note", ledger.checkpoint(OLD_SIZE))
    code, out = run("consistency", *keys(ledger), "--old", old, "--url", base)
    assert code == EXIT_OK and "consistency OK" in out, out
    code, out = run("history", *keys(ledger), "--url", base, "--subject", "bundle:4")
    assert code == EXIT_OK and "history OK: complete: 6 entries about bundle:4" in out, out


def test_http_lying_registry(ledger, registry, tmp_path):
    base, routes = registry
    serve_ledger(ledger, routes)
    # The entry endpoint serves another event than the one in the log.
    routes.add("/api/v1/ledger/entries/9/", {"seq": 9, "event_b64": b64(event(10))})
    code, out = run("inclusion", *keys(ledger), "--url", base, "--seq", "9")
    assert code == EXIT_FAILED, out
    # The proof endpoint answers for another entry.
    routes.add(
        f"/api/v1/ledger/proofs/inclusion/?seq=8&size={SIZE}",
        {"seq": 7, "size": SIZE, "proof": ledger.proof(7)},
    )
    assert run("inclusion", *keys(ledger), "--url", base, "--seq", "8")[0] == EXIT_FAILED
    # Not yet covered by the latest checkpoint.
    code, out = run("inclusion", *keys(ledger), "--url", base, "--seq", str(SIZE))
    assert code == EXIT_FAILED and "not covered" in out
    # History of bundle 1 served under bundle 2's address.
    routes.add("/api/v1/ledger/subjects/bundle/2/", ledger.history_bundle(1))
    assert run("history", *keys(ledger), "--url", base, "--subject", "bundle:2")[0] == 1
    # A rolled-back checkpoint: the registry's latest is older than ours.
    new = write(tmp_path, "new.note", ledger.checkpoint(SIZE))
    routes.add("/api/v1/ledger/checkpoint", ledger.checkpoint(OLD_SIZE), ctype="text/plain")
    code, out = run("consistency", *keys(ledger), "--old", new, "--url", base)
    assert code == EXIT_FAILED and "older" in out


def test_http_history_of_nothing_is_proven_absent_or_refused(ledger, registry, tmp_path):
    # given a registry that knows no entry about bundle 999999, and no kind "nonsense"
    base, routes = registry
    serve_ledger(ledger, routes)
    absent = ledger.history_bundle(999999)
    routes.add("/api/v1/ledger/subjects/bundle/999999/", absent)
    routes.add(
        "/api/v1/ledger/subjects/nonsense/abc/",
        {"code": "unknown_subject_kind", "detail": "No such kind.", "extra": {}},
        status=404,
    )

    # when / then: the absence is proven, never "OK: 0 entries"
    code, out = run("history", *keys(ledger), "--url", base, "--subject", "bundle:999999")
    assert code == EXIT_OK, out
    assert "bundle:999999 has no entry: proven absent at checkpoint size 37" in out
    code, out = run("history", *keys(ledger), "--url", base, "--subject", "nonsense:abc")
    assert code == EXIT_FAILED and "HTTP 404" in out and "unknown_subject_kind" in out, out
    # an empty history without its proof proves nothing
    empty = {**absent, "completeness": None}
    code, out = run("history", *keys(ledger), "--file", write(tmp_path, "e.json", empty))
    assert code == EXIT_FAILED and "without a completeness proof" in out, out
    # nor does one that hides the entries of a subject that has some
    hidden = {**ledger.history_bundle(1), "entries": []}
    code, out = run("history", *keys(ledger), "--file", write(tmp_path, "h.json", hidden))
    assert code == EXIT_FAILED and "entries were left out" in out, out


def test_http_errors_and_limits(ledger, registry):
    base, routes = registry
    assert run("checkpoint", *keys(ledger), "--url", base)[0] == EXIT_FAILED  # 404
    routes.add("/api/v1/ledger/checkpoint", "x" * 5000, ctype="text/plain")
    assert run("checkpoint", *keys(ledger), "--url", base, "--max-bytes", "1000")[0] == 1
    routes.add("/api/v1/ledger/checkpoint", "x" * 200_000, ctype="text/plain", length=False)
    code, out = run("checkpoint", *keys(ledger), "--url", base, "--max-bytes", "100000")
    assert code == EXIT_FAILED and "larger than" in out
    routes.add("/api/v1/ledger/checkpoint", ledger.checkpoint(), ctype="text/plain", delay=5)
    started = time.monotonic()
    code, out = run("checkpoint", *keys(ledger), "--url", base, "--timeout", "0.5")
    assert code == EXIT_FAILED, out
    assert time.monotonic() - started < 3
    assert run("checkpoint", *keys(ledger), "--url", "http://127.0.0.1:9")[0] == EXIT_FAILED


# ---------------------------------------------------------------- as a program, in isolation


def test_runs_as_module(ledger, tmp_path):
    path = write(tmp_path, "cp.note", ledger.checkpoint())
    argv = [sys.executable, "-m", "ledger.verify", "checkpoint", "--key", ledger.log.vkey]
    done = subprocess.run(
        [*argv, "--file", path], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "checkpoint OK" in done.stdout
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2


ISOLATION = """
import sys
before = set(sys.modules)
import ledger.verify.__main__, ledger.merkle, ledger.signing
ours = {
    "ledger", "ledger.verify", "ledger.verify.note", "ledger.verify.rfc9162",
    "ledger.verify.checks", "ledger.verify.tiles", "ledger.verify.__main__", "ledger.merkle",
    "ledger.signing", "ledger.verify.completeness", "ledger.verify.subject_map",
    "ledger.verify.keyhistory",
}
pynacl = {"nacl", "_sodium", "_cffi_backend"}
bad = sorted(
    m for m in set(sys.modules) - before - ours
    if m.split(".")[0] not in sys.stdlib_module_names | pynacl
)
print(bad)
sys.exit(1 if bad else 0)
"""


def test_verifier_imports_only_stdlib_and_pynacl():
    done = subprocess.run(
        [sys.executable, "-c", ISOLATION], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_inclusion_only_checks_a_history_without_its_completeness_proof(ledger, tmp_path):
    bundle = {**ledger.history_bundle(3), "completeness": None}
    path = write(tmp_path, "hop.json", bundle)
    code, out = run("history", *keys(ledger), "--inclusion-only", "--file", path)
    assert code == EXIT_OK, out
    assert "history OK (inclusion only): 7 entries, each in tree size 37" in out
    assert "completeness NOT proven" in out
    assert run("history", *keys(ledger), "--file", path)[0] == EXIT_FAILED
