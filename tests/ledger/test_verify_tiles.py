"""`python -m ledger.verify tiles`: a whole log read from tlog-tiles (a directory or a
URL), checked against its signed checkpoint; every tampering named."""

import functools
import http.server
import io
import shutil
import threading

import pytest

from ledger.keys import registry_signer
from ledger.services import checkpoint_create
from ledger.signing import Signer
from ledger.tiles import tiles_write
from ledger.verify.__main__ import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests.ledger.factories import append_events, integrate_all


def run(*argv):
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def tiles_dir(tmp_path, settings):
    """A log of 600 entries (two full level-0 tiles, a partial one, a partial level 1)."""
    settings.LEDGER_TILES_DIR = str(tmp_path / "tiles")
    append_events(600)
    integrate_all()
    checkpoint_create()
    tiles_write()
    return tmp_path / "tiles"


def flip(path, at=-1):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.django_db
def test_a_whole_log_verifies_from_a_directory(tiles_dir):
    code, out = run("tiles", "--key", registry_signer().vkey, "--dir", str(tiles_dir))

    assert code == EXIT_OK, out
    assert "checkpoint OK" in out
    assert "tiles OK: 600 entries in 3 entry bundles and 4 hash tiles" in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: flip(d / "tile/entries/001", at=100),
            "entry 256 does not hash to hash 0 of tile/0/001",
        ),
        (lambda d: flip(d / "tile/0/002.p/88"), "entry 599 does not hash to hash 87"),
        (lambda d: (d / "tile/0/001").unlink(), "tile/0/001 is missing"),
        (lambda d: (d / "tile/entries/002.p/88").unlink(), "tile/entries/002.p/88 is missing"),
        (
            lambda d: flip(d / "tile/1/000.p/2", at=40),
            "hash 1 of tile/1/000.p/2 is not the hash of tile/0/001",
        ),
        (
            lambda d: (d / "tile/1/000.p/2").write_bytes(b"\x00" * 32),
            "tile/1/000.p/2: 32 bytes, expected 2 hashes",
        ),
        (lambda d: flip(d / "tile/entries/000", at=1), "tile/entries/000: entry"),
    ],
    ids=[
        "entry-byte",
        "leaf-tile",
        "missing-tile",
        "missing-bundle",
        "level1-tile",
        "short-tile",
        "bad-length",
    ],
)
def test_tampered_tiles_fail_with_a_clear_message(tiles_dir, change, message):
    # given
    change(tiles_dir)

    # when
    code, out = run("tiles", "--key", registry_signer().vkey, "--dir", str(tiles_dir))

    # then
    assert code == EXIT_FAILED
    assert message in out, out


@pytest.mark.django_db
def test_a_checkpoint_signed_by_another_key_fails(tiles_dir):
    stranger = Signer(registry_signer().name, bytes([9]) * 32)

    code, out = run("tiles", "--key", stranger.vkey, "--dir", str(tiles_dir))

    assert code == EXIT_FAILED
    assert "checkpoint:" in out


@pytest.mark.django_db
def test_consistent_tiles_of_another_root_fail(tiles_dir, settings):
    # given: the tiles of a different log of the same size under our signed checkpoint
    other = tiles_dir.parent / "other"
    note = (tiles_dir / "checkpoint").read_text()
    shutil.copytree(tiles_dir, other)
    flip(other / "tile/entries/002.p/88", at=-2)
    # the changed entry's leaf hash, consistently in every tile above it
    from ledger.verify.tiles import decode_bundle, leaf_hash

    entries = decode_bundle((other / "tile/entries/002.p/88").read_bytes(), 88)
    hashes = bytearray((other / "tile/0/002.p/88").read_bytes())
    hashes[-32:] = leaf_hash(entries[-1])
    (other / "tile/0/002.p/88").write_bytes(bytes(hashes))
    (other / "checkpoint").write_text(note)

    # when
    code, out = run("tiles", "--key", registry_signer().vkey, "--dir", str(other))

    # then
    assert code == EXIT_FAILED
    assert "not the checkpoint's root" in out


def test_a_directory_without_a_checkpoint_is_a_usage_error(tmp_path):
    vkey = Signer("example.org/log", bytes([9]) * 32).vkey

    code, _ = run("tiles", "--key", vkey, "--dir", str(tmp_path))

    assert code == EXIT_USAGE


@pytest.mark.django_db
def test_a_log_fetched_over_http_verifies_and_is_saved_for_offline_use(tiles_dir, tmp_path):
    # given: the directory behind a plain static web server
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tiles_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    saved = tmp_path / "saved"
    vkey = registry_signer().vkey
    try:
        # when
        code, out = run("tiles", "--key", vkey, "--url", url, "--save", str(saved))
    finally:
        server.shutdown()
        server.server_close()

    # then: verified, and the saved copy verifies offline on its own
    assert code == EXIT_OK, out
    assert run("tiles", "--key", vkey, "--dir", str(saved))[0] == EXIT_OK
    (saved / "tile/0/000").unlink()
    code, out = run("tiles", "--key", vkey, "--dir", str(saved))
    assert code == EXIT_FAILED
    assert "tile/0/000 is missing" in out


@pytest.mark.django_db(transaction=True)
def test_the_verifier_reads_the_registrys_own_tlog_urls(live_server, tmp_path, settings):
    # given
    settings.LEDGER_TILES_DIR = str(tmp_path / "tiles")
    append_events(300)
    integrate_all()
    checkpoint_create()
    tiles_write()

    # when
    code, out = run("tiles", "--key", registry_signer().vkey, "--url", f"{live_server.url}/tlog")

    # then
    assert code == EXIT_OK, out
    assert "tiles OK: 300 entries in 2 entry bundles and 3 hash tiles" in out


@pytest.mark.django_db
def test_a_failed_run_saves_no_checkpoint(tiles_dir, tmp_path):
    # given
    flip(tiles_dir / "tile/entries/001", at=100)
    saved = tmp_path / "saved"

    # when
    code, _ = run(
        "tiles", "--key", registry_signer().vkey, "--dir", str(tiles_dir), "--save", str(saved)
    )

    # then: the copy is visibly unverified (no checkpoint), and no verifier accepts it
    assert code == EXIT_FAILED
    assert (saved / "tile/0/000").is_file()
    assert not (saved / "checkpoint").exists()
    assert run("tiles", "--key", registry_signer().vkey, "--dir", str(saved))[0] == EXIT_USAGE


@pytest.mark.django_db
def test_tiles_verify_against_an_older_cosigned_checkpoint(tiles_dir, tmp_path):
    # given: the checkpoint at 600 cosigned by a witness, then the log and its tiles grow
    witness = Signer("witness.example/w1", bytes([5]) * 32)
    note = (tiles_dir / "checkpoint").read_text()
    cosigned = note + witness.cosign(note[: note.index("\n\n") + 1], 1_760_000_000)
    anchored = tmp_path / "anchored.note"
    anchored.write_text(cosigned)
    append_events(100, start=600)
    integrate_all()
    checkpoint_create()
    tiles_write()
    assert (tiles_dir / "checkpoint").read_text().split("\n")[1] == "700"
    trust = ["--key", registry_signer().vkey, "--witness-key", witness.cosignature_vkey]

    # when
    code, out = run(
        "tiles", *trust, "--quorum", "1", "--dir", str(tiles_dir), "--checkpoint", str(anchored)
    )

    # then: the tiles prove the cosigned size 600 (its partial tiles are still served)
    assert code == EXIT_OK, out
    assert "cosigned by witness.example/w1 (1 of quorum 1)" in out
    assert "tiles OK: 600 entries" in out
    # and the directory's own checkpoint has no cosignature to meet a quorum with
    code, out = run("tiles", *trust, "--quorum", "1", "--dir", str(tiles_dir))
    assert code == EXIT_FAILED
