"""scripts/federation_demo.py end to end: two registries on SQLite, peered, one export.

The script runs as a user would run it (`--demo-transfer --exit-after-setup`), on free
ports and a temporary --dir. The environment points DATABASE_URL and CELERY_BROKER_URL
at services that do not exist: the script must give its registries their own SQLite
databases and no broker whatever the caller's environment (CI sets PostgreSQL and Redis).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "federation_demo.py"

pytestmark = pytest.mark.timeout(300)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def serving(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_demo(args: list[str], timeout: float = 240) -> tuple[int, str]:
    env = {
        **os.environ,
        # Unreachable on purpose: the script must not hand these to its registries.
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/not_the_demo",
        "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
        "CACHE_URL": "redis://127.0.0.1:9/1",
        "REGISTRY_SIGNING_KEY": "not-a-key",
    }
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the script stops its registries on SIGTERM
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"federation demo did not finish in {timeout:.0f} s:\n{out}")
    return proc.returncode, out


def test_two_registries_peer_export_import_and_verify_offline(tmp_path):
    port_a, port_b = free_ports(2)
    args = ["--dir", str(tmp_path / "demo"), "--port-a", str(port_a), "--port-b", str(port_b)]
    started = time.monotonic()

    code, out = run_demo([*args, "--demo-transfer", "--exit-after-setup"])
    elapsed = time.monotonic() - started

    assert code == 0, out
    # peered both ways, each checkpoint cosigned by the other and mirrored by it
    assert "B on A as witness,mirror,partner: registered" in out, out
    assert "A on B as witness,mirror,partner: registered" in out, out
    assert re.search(r"A's checkpoint at size \d+ is cosigned by B \(anchored\)", out), out
    assert re.search(r"B mirrors A's log up to \d+", out), out
    assert re.search(r"A mirrors B's log up to \d+", out), out
    assert "offline verification of A's anchored checkpoint: OK" in out, out
    assert "offline verification of B's mirror of A: OK" in out, out
    # the export, imported at B, and the histories verified offline on both sides
    assert re.search(r"export #\d+ imported at B after [\d.]+ s", out), out
    assert "offline verification of the history at B: OK" in out, out
    assert "offline verification of A's part of the history, as B holds it: OK" in out, out
    assert "offline verification of the history at A: OK" in out, out
    # each as the verifier lists it: B's import, A's issue and export, and its completion
    for kind in ("imported", "issued", "exported", "export_completed"):
        assert re.search(rf"^ +#\d+ +\S+ +certificate\.{kind}$", out, re.MULTILINE), kind
    assert "DEMO TRANSFER OK" in out, out
    assert "\nERROR: " not in out and ": FAILED" not in out, out
    # printed for the user: URLs, keys, logins, tokens, commands to paste
    assert f"http://127.0.0.1:{port_a}/federation/status" in out
    assert re.search(r"verifier key   registry-b\.localhost/gridproof\+[0-9a-f]{8}\+", out)
    assert re.search(r"logins         admin / \S+", out)
    assert "producer token gp_" in out
    assert "/api/v1/bundles/" in out and "/exports/" in out
    # both registries stopped; their own databases and keys are in --dir
    assert "Registries stopped." in out
    assert not serving(port_a) and not serving(port_b)
    for name in ("a", "b"):
        assert (tmp_path / "demo" / name / "db.sqlite3").is_file()
        assert (tmp_path / "demo" / name / "signing.key").stat().st_mode & 0o077 == 0

    # run again on the same --dir: same keys and logins, peers kept, nothing re-created
    started = time.monotonic()
    again_code, again = run_demo([*args, "--exit-after-setup"])
    elapsed_again = time.monotonic() - started
    assert again_code == 0, again
    assert "B on A as witness,mirror,partner: already registered" in again, again
    assert "A on B as witness,mirror,partner: already registered" in again, again
    keys = re.compile(r"verifier key   (\S+)")
    assert keys.findall(again) == keys.findall(out) and len(keys.findall(out)) == 2
    logins = re.compile(r"logins         (.+)")
    assert logins.findall(again) == logins.findall(out)
    assert "Registries stopped." in again
    print(f"federation demo: {elapsed:.1f} s, again: {elapsed_again:.1f} s")
