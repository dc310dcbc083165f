"""python -m ledger.verify: check GridProof ledger checkpoints and proofs offline.

Standard library and PyNaCl only. Exit status: 0 verified, 1 verification failed
(including a registry that cannot be reached or answers nonsense), 2 usage error.
The check_* functions are the verification steps (`ledger.verify.checks`), importable
without the CLI and re-exported here.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ledger.verify.checks import (
    CheckpointResult,
    ConsistencyResult,
    HistoryResult,
    InclusionResult,
    Trust,
    UsageError,
    VerificationFailed,
    _b64,
    _hash_field,
    _mapping,
    _seq,
    check_checkpoint,
    check_consistency,
    check_consistency_proof_doc,
    check_history,
    check_inclusion,
    check_key_history,
    signed_by_trusted_key,
)
from ledger.verify.completeness import check_complete_history
from ledger.verify.note import (
    verify_checkpoint,
)
from ledger.verify.rfc9162 import leaf_hash
from ledger.verify.tiles import TilesError, check_tiles

# The verification steps and their results live in ledger.verify.checks; they are
# re-exported here, where auditors' scripts and the tests have always imported them.
__all__ = [
    "CheckpointResult",
    "ConsistencyResult",
    "HistoryResult",
    "InclusionResult",
    "Trust",
    "UsageError",
    "VerificationFailed",
    "check_checkpoint",
    "check_consistency",
    "check_consistency_proof_doc",
    "check_history",
    "check_inclusion",
    "check_key_history",
    "main",
    "verify_checkpoint",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_CHUNK = 64 * 1024

CHECKPOINT_PATH = "/api/v1/ledger/checkpoint"
ENTRY_PATH = "/api/v1/ledger/entries/{seq}/"
INCLUSION_PATH = "/api/v1/ledger/proofs/inclusion/?seq={seq}&size={size}"
CONSISTENCY_PATH = "/api/v1/ledger/proofs/consistency/?first={first}&second={second}"
SUBJECT_PATH = "/api/v1/ledger/subjects/{type}/{id}/"
KEYS_PATH = "/api/v1/ledger/keys/"


@dataclass(frozen=True)
class Net:
    """Limits for every network call."""

    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES


# ---------------------------------------------------------------- network


def _check_base_url(base: str) -> str:
    parsed = urllib.parse.urlsplit(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"registry URL must be http(s)://host[:port][/path], got {base!r}")
    return base.rstrip("/")


def fetch(url: str, net: Net, accept: str = "application/json") -> bytes:
    """GET url with a connect/read timeout, an overall deadline and a size cap."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UsageError(f"only http(s) URLs can be fetched, got {url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, headers={"Accept": accept, "User-Agent": "gridproof-verify/1"}
    )
    deadline = time.monotonic() + 2 * net.timeout
    try:
        with urllib.request.urlopen(request, timeout=net.timeout) as response:  # noqa: S310
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > net.max_bytes:
                raise VerificationFailed(f"{url}: response larger than {net.max_bytes} bytes")
            chunks: list[bytes] = []
            total = 0
            while chunk := response.read(_CHUNK):
                total += len(chunk)
                if total > net.max_bytes:
                    raise VerificationFailed(f"{url}: response larger than {net.max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise VerificationFailed(f"{url}: response took too long")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        failure = _NotFound if exc.code == 404 else VerificationFailed
        raise failure(f"{url}: HTTP {exc.code} {exc.reason}{_error_code(exc)}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise VerificationFailed(f"{url}: {reason}") from None
    return b"".join(chunks)


class _NotFound(VerificationFailed):
    """HTTP 404: for a tile, "not there" (the reader falls back or names it missing)."""


def _error_code(exc: urllib.error.HTTPError) -> str:
    """The registry's machine-readable error ({"code", "detail"}), if the body carries one."""
    try:
        body = json.loads(exc.read(_CHUNK))
    except (ValueError, OSError, http.client.HTTPException):
        return ""
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return ""
    detail = body.get("detail")
    return f" ({body['code']}: {detail})" if isinstance(detail, str) else f" ({body['code']})"


def fetch_text(url: str, net: Net) -> str:
    try:
        return fetch(url, net, accept="text/plain").decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationFailed(f"{url}: response is not UTF-8 text") from None


def fetch_json(url: str, net: Net) -> Any:
    try:
        return json.loads(fetch(url, net))
    except ValueError:
        raise VerificationFailed(f"{url}: response is not JSON") from None


def fetch_inclusion_bundle(base: str, seq: int, trust: Trust, net: Net) -> dict[str, Any]:
    """Assemble an inclusion bundle from a registry (checkpoint, entry, proof)."""
    base = _check_base_url(base)
    note = fetch_text(base + CHECKPOINT_PATH, net)
    cp = check_checkpoint(note, trust).checkpoint
    if seq >= cp.size:
        raise VerificationFailed(
            f"entry {seq} is not covered by the latest checkpoint (tree size {cp.size}); "
            "retry after the next checkpoint"
        )
    entry = _mapping(fetch_json(base + ENTRY_PATH.format(seq=seq), net), "entry")
    doc = fetch_json(base + INCLUSION_PATH.format(seq=seq, size=cp.size), net)
    doc = _mapping(doc, "inclusion proof")
    if _seq(doc.get("seq")) != seq or _seq(doc.get("size"), "size") != cp.size:
        raise VerificationFailed(
            f"registry sent a proof for entry {doc.get('seq')} at size {doc.get('size')}"
        )
    event = _b64(entry.get("event_b64"), "event_b64")
    if doc.get("leaf_hash") is not None and _hash_field(doc["leaf_hash"], "leaf_hash") != (
        leaf_hash(event)
    ):
        raise VerificationFailed(f"registry's leaf hash for entry {seq} is not that of its event")
    if doc.get("root") is not None and _hash_field(doc["root"], "root") != cp.root:
        raise VerificationFailed("registry's proof root is not the checkpoint root")
    return {
        "checkpoint": note,
        "seq": seq,
        "event_b64": entry["event_b64"],
        "proof": doc.get("proof"),
    }


def fetch_consistency_proof(base: str, first: int, second: int, net: Net) -> list[bytes]:
    base = _check_base_url(base)
    doc = fetch_json(base + CONSISTENCY_PATH.format(first=first, second=second), net)
    return check_consistency_proof_doc(doc, first, second)


MAX_HISTORY_PAGES = 10_000


def fetch_history_bundle(base: str, subject: tuple[str, str], net: Net) -> Any:
    """The subject's whole history: every page (`partial`, `next_after`), all proven
    against the checkpoint of the first page's size, joined into one bundle."""
    base = _check_base_url(base)
    kind, ident = (urllib.parse.quote(part, safe="") for part in subject)
    url = base + SUBJECT_PATH.format(type=kind, id=ident)
    bundle = fetch_json(url, net)
    pages = 1
    while isinstance(bundle, dict) and bundle.get("partial"):
        after, size = bundle.get("next_after"), bundle.get("size")
        if not isinstance(after, int) or not isinstance(size, int) or pages >= MAX_HISTORY_PAGES:
            raise VerificationFailed(f"{url}: a partial page without a usable next_after")
        page = fetch_json(f"{url}?{urllib.parse.urlencode({'after': after, 'size': size})}", net)
        pages += 1
        if not isinstance(page, dict) or page.get("size") != size:
            raise VerificationFailed(f"{url}: page {pages} is not proven at size {size}")
        entries = page.get("entries")
        if not isinstance(entries, list) or not entries:
            raise VerificationFailed(f"{url}: page {pages} after seq {after} is empty")
        first = entries[0].get("seq") if isinstance(entries[0], dict) else None
        if not isinstance(first, int) or first <= after:
            raise VerificationFailed(f"{url}: page {pages} does not start after seq {after}")
        bundle["entries"] = bundle.get("entries", []) + entries
        bundle["partial"], bundle["next_after"] = page.get("partial"), page.get("next_after")
    return bundle


def tiles_getter(source: str, net: Net, save: str | None = None):
    """A `ledger.verify.tiles.Getter` over a tiles directory or a base URL (a tlog-tiles
    prefix); with `save`, every file read is also written under that directory."""
    if source.startswith(("http://", "https://")):
        base = _check_base_url(source)

        def read(path: str) -> bytes | None:
            try:
                return fetch(f"{base}/{path}", net, accept="application/octet-stream")
            except _NotFound:
                return None

    else:
        root = Path(source)
        if not (root / "checkpoint").is_file():
            raise UsageError(f"{source} has no checkpoint file: not a tiles directory")

        def read(path: str) -> bytes | None:
            try:
                return (root / path).read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                return None

    if save is None:
        return read

    def read_and_save(path: str) -> bytes | None:
        data = read(path)
        # The checkpoint is saved by run_tiles once everything verified, so a saved copy
        # without one is an unverified, incomplete one.
        if data is not None and path != "checkpoint":
            target = Path(save) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return data

    return read_and_save


def run_tiles(
    source: str,
    trust: Trust,
    net: Net,
    out: TextIO,
    save: str | None = None,
    checkpoint: str | None = None,
) -> None:
    """Verify a whole log served as tlog-tiles: the checkpoint, every bundle and tile.

    With `checkpoint` (a note file, e.g. the anchored one with its cosignatures), the
    tiles are checked against that checkpoint instead of the directory's own; its size
    may be smaller (tiles stay readable at every checkpoint's size)."""
    get = tiles_getter(source, net, save)
    data = get("checkpoint") if checkpoint is None else _read_text(checkpoint).encode()
    if data is None:
        raise VerificationFailed(f"{source}: no checkpoint")
    try:
        note = data.decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationFailed(f"{source}: the checkpoint is not UTF-8 text") from None
    result = check_checkpoint(note, trust)
    cp = result.checkpoint
    try:
        checked = check_tiles(get, cp.size, cp.root)
    except TilesError as exc:
        raise VerificationFailed(f"tiles: {exc}") from None
    if save is not None:
        Path(save, "checkpoint").write_bytes(data)
    print(_describe(result, trust), file=out)
    print(
        f"tiles OK: {cp.size} entries in {checked.bundles} entry bundles and "
        f"{checked.tiles} hash tiles rebuild the checkpoint's root",
        file=out,
    )


# ---------------------------------------------------------------- command line


def follow_key_history(base: str, trust: Trust, net: Net) -> Trust:
    """`trust` following the registry's key history, when its latest checkpoint is signed by
    another key than the one the auditor trusts (a rotation); else `trust` unchanged."""
    base = _check_base_url(base)
    if signed_by_trusted_key(fetch_text(base + CHECKPOINT_PATH, net), trust):
        return trust
    return check_key_history(fetch_json(base + KEYS_PATH, net), trust)


def _describe(result: CheckpointResult, trust: Trust) -> str:
    cp = result.checkpoint
    root = base64.b64encode(cp.root).decode("ascii")
    key = trust.key_at(cp.size)
    line = (
        f"checkpoint OK: {cp.origin} size {cp.size} root {root}, signed by "
        f"{key.name}+{key.key_id.hex()}"
    )
    if trust.witness_keys:
        names = ", ".join(result.cosigners) or "none"
        line += f"; cosigned by {names} ({len(result.cosigners)} of quorum {trust.quorum})"
    return line


def _event_summary(event: bytes) -> str:
    try:
        doc = json.loads(event)
    except ValueError:
        return f"(not JSON, {len(event)} bytes)"
    if not isinstance(doc, Mapping):
        return f"(JSON {type(doc).__name__}, {len(event)} bytes)"
    kind = doc.get("type", doc.get("kind", "?"))
    at = doc.get("at", doc.get("time", "?"))
    return f"{at}  {kind}"


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _read_json(path: str) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise VerificationFailed(f"{path} is not valid JSON: {exc}") from None


def _parse_subject(value: str) -> tuple[str, str]:
    kind, sep, ident = value.partition(":")
    if not sep or not kind or not ident:
        raise argparse.ArgumentTypeError("subject must be TYPE:ID, e.g. bundle:42")
    return kind, ident


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < number <= 600:
        raise argparse.ArgumentTypeError("must be in (0, 600] seconds")
    return number


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--key", required=True, help="the log's verifier key (vkey)")
    common.add_argument(
        "--witness-key", action="append", default=[], help="a trusted witness vkey (repeatable)"
    )
    common.add_argument(
        "--quorum", type=_non_negative, default=0, help="cosignatures required (default 0)"
    )
    common.add_argument("--origin", help="expected checkpoint origin (default: the key's name)")
    common.add_argument(
        "--keys",
        help="the log's key history JSON (GET /api/v1/ledger/keys/): follow its key rotations "
        "from --key (with --url it is fetched when the log signs with another key)",
    )
    common.add_argument(
        "--timeout", type=_positive_float, default=DEFAULT_TIMEOUT, help="seconds per request"
    )
    common.add_argument(
        "--max-bytes", type=_non_negative, default=DEFAULT_MAX_BYTES, help="response size cap"
    )

    parser = argparse.ArgumentParser(
        prog="python -m ledger.verify",
        description="Verify GridProof ledger checkpoints and proofs without trusting the registry.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("checkpoint", parents=[common], help="verify a signed checkpoint")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="signed checkpoint note")
    src.add_argument("--url", help="registry base URL")

    p = commands.add_parser("inclusion", parents=[common], help="verify an entry's inclusion")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="inclusion bundle JSON")
    src.add_argument("--url", help="registry base URL (with --seq)")
    p.add_argument("--seq", type=_non_negative, help="entry number (with --url)")

    p = commands.add_parser("consistency", parents=[common], help="verify append-only growth")
    p.add_argument("--old", required=True, help="older signed checkpoint note")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--new", help="newer signed checkpoint note")
    src.add_argument("--url", help="registry base URL (fetches the latest checkpoint)")
    p.add_argument("--proof", help='consistency proof JSON {"first","second","proof"} (--new)')

    p = commands.add_parser("history", parents=[common], help="verify a subject's history")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="history bundle JSON")
    src.add_argument("--url", help="registry base URL (with --subject)")
    p.add_argument("--subject", type=_parse_subject, help="TYPE:ID (with --url)")
    p.add_argument(
        "--inclusion-only",
        action="store_true",
        help="check only that each listed entry is in the log, for a history that carries no "
        "completeness proof (e.g. a partner registry's part of an imported certificate); "
        "it does NOT show that no entry was left out",
    )

    p = commands.add_parser(
        "tiles", parents=[common], help="verify the whole log served as C2SP tlog-tiles"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dir", help="a tiles directory (checkpoint, tile/...)")
    src.add_argument("--url", help="the tiles' base URL (e.g. https://registry.example/tlog)")
    p.add_argument("--save", help="also keep every file read under this directory")
    p.add_argument(
        "--checkpoint",
        help="verify against this signed note (e.g. the anchored, cosigned one) instead",
    )
    return parser


def _check_usage(args: argparse.Namespace, url: str | None) -> None:
    """Refuse option combinations that cannot work, before any network call."""
    if args.command == "inclusion" and url and args.seq is None:
        raise UsageError("inclusion --url needs --seq")
    if args.command == "inclusion" and not url and args.seq is not None:
        raise UsageError("--seq goes with --url; a bundle file names its own seq")
    if args.command == "consistency" and url and args.proof:
        raise UsageError("--proof goes with --new; with --url the proof is fetched")
    if args.command == "history" and url and args.subject is None:
        raise UsageError("history --url needs --subject TYPE:ID")


def _run(args: argparse.Namespace, out: TextIO) -> None:
    trust = Trust.from_strings(args.key, args.witness_key, args.quorum, args.origin)
    net = Net(args.timeout, args.max_bytes)
    url = _check_base_url(args.url) if getattr(args, "url", None) else None
    _check_usage(args, url)
    if args.keys:
        trust = check_key_history(_read_json(args.keys), trust)
    elif url and args.command != "tiles":  # a tiles URL is a static folder, not the API
        trust = follow_key_history(url, trust, net)

    if args.command == "tiles":
        run_tiles(url or args.dir, trust, net, out, save=args.save, checkpoint=args.checkpoint)

    elif args.command == "checkpoint":
        note = fetch_text(url + CHECKPOINT_PATH, net) if url else _read_text(args.file)
        print(_describe(check_checkpoint(note, trust), trust), file=out)

    elif args.command == "inclusion":
        bundle = fetch_inclusion_bundle(url, args.seq, trust, net) if url else None
        bundle = _read_json(args.file) if bundle is None else bundle
        result = check_inclusion(bundle, trust)
        print(_describe(result.checkpoint, trust), file=out)
        print(
            f"inclusion OK: entry {result.seq} (leaf {result.leaf_hash.hex()[:16]}…) is in "
            f"tree size {result.checkpoint.checkpoint.size}; {_event_summary(result.event)}",
            file=out,
        )

    elif args.command == "consistency":
        old_note = _read_text(args.old)
        new_note = fetch_text(url + CHECKPOINT_PATH, net) if url else _read_text(args.new)
        old = check_checkpoint(old_note, trust).checkpoint
        new = check_checkpoint(new_note, trust).checkpoint
        proof = None
        if args.proof:
            proof = check_consistency_proof_doc(_read_json(args.proof), old.size, new.size)
        elif url and 0 < old.size < new.size:
            proof = fetch_consistency_proof(url, old.size, new.size, net)
        elif 0 < old.size < new.size:
            raise UsageError(f"sizes {old.size} -> {new.size} differ: pass --proof FILE.json")
        result = check_consistency(old_note, new_note, proof, trust)
        print(_describe(result.old, trust), file=out)
        print(_describe(result.new, trust), file=out)
        a, b = result.old.checkpoint.size, result.new.checkpoint.size
        print(f"consistency OK: tree size {b} extends tree size {a}", file=out)

    elif args.command == "history":
        bundle = fetch_history_bundle(url, args.subject, net) if url else None
        bundle = _read_json(args.file) if bundle is None else bundle
        if args.inclusion_only:
            result = check_history(bundle, trust, args.subject)
            print(_describe(result.checkpoint, trust), file=out)
            print(
                f"history OK (inclusion only): {len(result.entries)} entries, each in tree size "
                f"{result.checkpoint.checkpoint.size}; completeness NOT proven",
                file=out,
            )
            for seq, event in result.entries:
                print(f"  #{seq}  {_event_summary(event)}", file=out)
            return
        complete = check_complete_history(bundle, trust, args.subject)
        result = complete.history
        print(_describe(result.checkpoint, trust), file=out)
        size = result.checkpoint.checkpoint.size
        for key, count in sorted(complete.counts.items()):
            if count:
                print(
                    f"history OK: complete: {count} entries about {key}, proven at "
                    f"checkpoint size {size}",
                    file=out,
                )
            else:
                print(
                    f"history OK: {key} has no entry: proven absent at checkpoint size {size}",
                    file=out,
                )
        for seq, event in result.entries:
            print(f"  #{seq}  {_event_summary(event)}", file=out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        _run(args, out)
    except UsageError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except VerificationFailed as exc:
        print(f"FAILED: {exc}", file=out)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
