"""Fake peers for federation tests: a peer log and a tlog-witness, each a stdlib HTTP server
on 127.0.0.1 in a thread, built from ledger.merkle and ledger.signing only."""

import base64
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from federation.protocol import (
    BUNDLE_CONTENT_TYPE,
    SIZE_CONTENT_TYPE,
    ProtocolError,
    encode_bundle,
    parse_add_checkpoint,
)
from ledger.merkle import CompactRange, consistency_proof, inclusion_proof, leaf_hash
from ledger.signing import Signer, sign_checkpoint
from ledger.verify.keyhistory import ROTATION_KIND, rotation_statement
from ledger.verify.note import Checkpoint, NoteError, VerifierKey, verify_note
from ledger.verify.rfc9162 import ProofError, verify_consistency
from ledger.verify.tiles import TILE_WIDTH, tile_path
from ledger.verify.tiles import encode_bundle as encode_tile_bundle


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def make_signer(name: str, seed_byte: int) -> Signer:
    return Signer(name, bytes([seed_byte]) * 32)


class FakeLog:
    """A peer's log in memory: entries, their leaf hashes, and signed checkpoints."""

    def __init__(self, origin: str = "peer.example/log", seed_byte: int = 7) -> None:
        self.signer = make_signer(origin, seed_byte)
        self.origin = origin
        self.events: list[bytes] = []
        self.leaves: list[bytes] = []
        self.rotations: list[tuple[int, Signer]] = []  # (seq of the announcement, new signer)

    def append(self, count: int, prefix: str = "event") -> None:
        for _ in range(count):
            event = json.dumps({"type": "test.event", "n": len(self.events), "p": prefix}).encode()
            self.events.append(event)
            self.leaves.append(leaf_hash(event))

    @property
    def size(self) -> int:
        return len(self.events)

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        tree = CompactRange()
        tree.extend(self.leaves[:size])
        return tree.root()

    def rotate(self, new: Signer, *, signed_by: Signer | None = None) -> int:
        """Append a ledger.key_rotated announcement of `new` (statement signed by the current
        key, or by `signed_by` to forge one); return its seq."""
        old = self.signer_at(self.size + 1)
        statement = rotation_statement(self.origin, old.vkey, new.vkey)
        data = {"old_vkey": old.vkey, "new_vkey": new.vkey, "origin": self.origin}
        data["note"] = (signed_by or old).sign_note(statement)
        event = json.dumps({"type": ROTATION_KIND, "data": data}).encode()
        self.events.append(event)
        self.leaves.append(leaf_hash(event))
        self.rotations.append((self.size - 1, new))
        return self.size - 1

    def signer_at(self, size: int) -> Signer:
        """The key current at `size`: the newest announced by an entry with seq < size."""
        signer = self.signer
        for seq, new in self.rotations:
            if seq < size:
                signer = new
        return signer

    def key_history(self, size: int) -> dict:
        """What GET /api/v1/ledger/keys/ answers, proven at `size`."""
        return {
            "origin": self.origin,
            "first_vkey": self.signer.vkey,
            "size": size,
            "checkpoint": self.checkpoint(size),
            "rotations": [
                {
                    "seq": seq,
                    "old_vkey": json.loads(self.events[seq])["data"]["old_vkey"],
                    "new_vkey": new.vkey,
                    "event_b64": b64(self.events[seq]),
                    "proof": [b64(h) for h in inclusion_proof(seq, size, self.leaves)],
                }
                for seq, new in self.rotations
                if seq < size
            ],
        }

    def checkpoint(self, size: int | None = None, root: bytes | None = None) -> str:
        size = self.size if size is None else size
        return sign_checkpoint(
            self.signer_at(size), self.origin, size, self.root(size) if root is None else root
        )

    def consistency(self, first: int, second: int) -> list[bytes]:
        return consistency_proof(first, second, self.leaves)


class _Server:
    """A ThreadingHTTPServer on an ephemeral port, started and stopped by the test."""

    handler: type[BaseHTTPRequestHandler]

    def start(self) -> "_Server":
        server = self

        class Handler(self.handler):
            owner = server

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: "_Server"
    protocol_version = "HTTP/1.1"

    def send_body(self, status: int, body: bytes, content_type: str, length: int | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


class _PeerHandler(_Handler):
    def do_GET(self) -> None:
        peer: FakePeerServer = self.owner
        peer.requests.append(self.path)
        if peer.delay:
            time.sleep(peer.delay)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        log = peer.log
        if url.path == "/api/v1/ledger/checkpoint":
            note = peer.checkpoint_note or log.checkpoint(peer.served_size)
            return self.send_body(200, note.encode(), "text/plain; charset=utf-8")
        if url.path == "/api/v1/ledger/entries/":
            start, limit = int(query["start"]), int(query["limit"])
            limit = min(limit, peer.page_limit)
            end = min(start + limit, peer.served_size or log.size)
            entries = []
            for seq in range(start, end):
                event = peer.forged.get(seq, log.events[seq])
                leaf = leaf_hash(event) if peer.lie_about_leaf_hashes else log.leaves[seq]
                entries.append({"seq": seq, "event_b64": b64(event), "leaf_hash": b64(leaf)})
            body = json.dumps({"start": start, "limit": limit, "next": None, "entries": entries})
            raw = body.encode()
            if peer.truncate:
                return self.send_body(200, raw[: len(raw) // 2], "application/json", len(raw))
            if peer.pad_bytes:
                raw = raw + b" " * peer.pad_bytes
            return self.send_body(200, raw, "application/json")
        if url.path == "/api/v1/federation/log/entries/" and peer.serve_bundles:
            start, limit = int(query["start"]), int(query["limit"])
            end = min(start + min(limit, peer.page_limit), peer.served_size or log.size)
            raw = encode_bundle(peer.forged.get(seq, log.events[seq]) for seq in range(start, end))
            if peer.truncate and raw:
                return self.send_body(200, raw[: len(raw) // 2], BUNDLE_CONTENT_TYPE, len(raw))
            if peer.pad_bytes:
                raw += (1).to_bytes(4, "big") + b" " * peer.pad_bytes
            return self.send_body(200, raw, BUNDLE_CONTENT_TYPE)
        if url.path.startswith("/tlog/") and peer.serve_tiles:
            return self.send_tile(peer, url.path.removeprefix("/tlog/"))
        if url.path == "/api/v1/ledger/keys/":
            body = json.dumps(log.key_history(peer.served_size or log.size)).encode()
            return self.send_body(200, body, "application/json")
        if url.path == "/api/v1/ledger/proofs/consistency/":
            first, second = int(query["first"]), int(query["second"])
            proof = peer.proof_override or log.consistency(first, second)
            body = {"first": first, "second": second, "proof": [b64(h) for h in proof]}
            return self.send_body(200, json.dumps(body).encode(), "application/json")
        return self.send_body(404, b'{"code": "not_found"}', "application/json")

    def send_tile(self, peer: "FakePeerServer", path: str) -> None:
        """The log's tlog-tiles at its served size: the checkpoint and entry bundles (what
        replication reads), built from the (possibly forged) events on each request."""
        size = peer.tiles_size or peer.served_size or peer.log.size
        if path == "checkpoint":
            note = peer.checkpoint_note or peer.log.checkpoint(size)
            return self.send_body(200, note.encode(), "text/plain; charset=utf-8")
        for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, size - n * TILE_WIDTH)
            events = [
                peer.forged.get(seq, peer.log.events[seq])
                for seq in range(n * TILE_WIDTH, n * TILE_WIDTH + width)
            ]
            level, raw = encode_tile_bundle(events)
            if path == tile_path(level, n, width):
                if peer.truncate:
                    half = raw[: len(raw) // 2]
                    return self.send_body(200, half, "application/octet-stream", len(raw))
                return self.send_body(200, raw + b" " * peer.pad_bytes, "application/octet-stream")
        return self.send_body(404, b"", "text/plain")


class FakePeerServer(_Server):
    """Serves a FakeLog at the ledger API's paths, with knobs to misbehave."""

    handler = _PeerHandler

    def __init__(
        self, log: FakeLog, *, serve_bundles: bool = False, serve_tiles: bool = False
    ) -> None:
        self.log = log
        self.serve_bundles = serve_bundles
        self.serve_tiles = serve_tiles
        self.tiles_size: int | None = None  # tiles behind the API's checkpoint
        self.requests: list[str] = []
        self.forged: dict[int, bytes] = {}
        self.lie_about_leaf_hashes = False
        self.checkpoint_note: str | None = None
        self.served_size: int | None = None
        self.proof_override: list[bytes] | None = None
        self.page_limit = 1000
        self.truncate = False
        self.pad_bytes = 0
        self.delay = 0.0


class _WitnessHandler(_Handler):
    def do_POST(self) -> None:
        witness: FakeWitness = self.owner
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        witness.requests += 1
        if witness.down:
            return self.send_body(503, b"down for maintenance\n", "text/plain")
        if self.path != "/add-checkpoint":
            return self.send_body(404, b"not found\n", "text/plain")
        status, answer, content_type = witness.handle(body)
        return self.send_body(status, answer.encode(), content_type)


class FakeWitness(_Server):
    """A minimal C2SP tlog-witness for one log key, keeping the latest size and root."""

    handler = _WitnessHandler

    def __init__(self, name: str, seed_byte: int, log_vkey: str) -> None:
        self.signer = make_signer(name, seed_byte)
        self.log_key = VerifierKey.parse(log_vkey)
        self.size = 0
        self.root: bytes | None = None
        self.down = False
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def vkey(self) -> str:
        return self.signer.cosignature_vkey

    def handle(self, body: bytes) -> tuple[int, str, str]:
        try:
            request = parse_add_checkpoint(body)
            note = verify_note(request.note, [self.log_key])
        except ProtocolError:
            return 400, "bad request\n", "text/plain"
        except NoteError:
            return 403, "untrusted\n", "text/plain"
        checkpoint = Checkpoint.parse(note.text)
        with self.lock:
            if request.old_size != self.size:
                return 409, f"{self.size}\n", SIZE_CONTENT_TYPE
            if self.size:
                try:
                    verify_consistency(
                        self.size, checkpoint.size, request.proof, self.root, checkpoint.root
                    )
                except ProofError:
                    return 422, "bad proof\n", "text/plain"
            self.size, self.root = checkpoint.size, checkpoint.root
            return 200, self.signer.cosign(note.text, int(time.time())), "text/plain"


class _MirrorHandler(_Handler):
    def do_GET(self) -> None:
        mirror: FakeMirror = self.owner
        url = urllib.parse.urlsplit(self.path)
        if mirror.note is not None and self.path == mirror.checkpoint_path:
            return self.send_body(200, mirror.note.encode(), "text/plain; charset=utf-8")
        if mirror.note is not None and url.path == mirror.entries_path:
            query = dict(urllib.parse.parse_qsl(url.query))
            start, limit = int(query.get("start", 0)), int(query.get("limit", 100))
            page = [
                {"seq": seq, "event_b64": b64(mirror.entries[seq]),
                 "leaf_hash": b64(leaf_hash(mirror.entries[seq]))}
                for seq in range(start, min(start + limit, len(mirror.entries)))
            ]  # fmt: skip
            body = json.dumps({"start": start, "limit": limit, "entries": page}).encode()
            return self.send_body(200, body, "application/json")
        return self.send_body(404, b'{"code": "mirror_not_found"}', "application/json")


class FakeMirror(_Server):
    """A peer mirroring our log: serves the checkpoint of ours it holds (`note`), or 404,
    and the entries it copied (`entries`, event bytes by seq) as the ledger API's pages."""

    handler = _MirrorHandler

    def __init__(self, origin: str, note: str | None, entries: list[bytes] = ()) -> None:
        self.checkpoint_path = f"/mirrors/{origin}/api/v1/ledger/checkpoint"
        self.entries_path = f"/mirrors/{origin}/api/v1/ledger/entries/"
        self.note = note
        self.entries = list(entries)
