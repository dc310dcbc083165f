"""Replication's third source of entries: a peer's C2SP tlog-tiles under `/tlog/`.

A GridProof peer with LEDGER_TILES_DIR serves its log as static files (ledger/tiles.py);
they cover the peer's latest checkpoint once written, so replication reads entry bundles
from them when they reach the size it is replicating to, and otherwise falls back to the
API. Nothing here is trusted: the entries are checked against the peer's signed
checkpoint by `federation.replication._check_batch`, as from any other source.
"""

from federation import client
from federation.client import Limits
from federation.models import Peer
from ledger.verify.tiles import TILE_WIDTH, TilesError, read_bundle

__all__ = ["TILE_WIDTH", "TilesUnavailable", "peer_tiles_size", "tiles_entries"]

TILES_CHECKPOINT_PATH = "/tlog/checkpoint"
TILES_PREFIX = "/tlog/"


class TilesUnavailable(Exception):
    """A tile could not be fetched or parsed (replication fails this run and retries)."""


def peer_tiles_size(peer: Peer, limits: Limits) -> int:
    """The size the peer's tiles cover (the size line of its `/tlog/checkpoint`), 0 when it
    serves none or they are of another origin."""
    url = client.join(peer.base_url, TILES_CHECKPOINT_PATH)
    try:
        response = client.get(url, limits=limits, accept="text/plain")
    except (client.PeerUnreachable, client.PeerResponseInvalid):
        return 0
    if response.status != 200:
        return 0
    lines = response.body.decode("utf-8", "replace").split("\n")
    if len(lines) < 2 or lines[0] != peer.origin or not lines[1].isdigit():
        return 0
    return int(lines[1])


def tiles_entries(
    peer: Peer, tiles_size: int, start: int, limit: int, limits: Limits
) -> tuple[list[bytes], bytes]:
    """Up to `limit` entries from `start`, from the one entry bundle holding `start` in the
    peer's tiles of `tiles_size`; and the bundle's bytes (evidence if they are forged)."""
    n = start // TILE_WIDTH
    width = TILE_WIDTH if (n + 1) * TILE_WIDTH <= tiles_size else tiles_size - n * TILE_WIDTH
    fetched: list[bytes] = []

    def get(path: str) -> bytes | None:
        url = client.join(peer.base_url, TILES_PREFIX + path)
        try:
            response = client.get(url, limits=limits, accept="application/octet-stream")
        except (client.PeerUnreachable, client.PeerResponseInvalid) as exc:
            raise TilesUnavailable(f"{url}: {exc}") from None
        if response.status == 404:
            return None
        if response.status != 200:
            raise TilesUnavailable(f"HTTP {response.status} from {url}")
        fetched.append(response.body)
        return response.body

    try:
        entries = read_bundle(get, n, width)
    except TilesError as exc:
        raise TilesUnavailable(f"{peer.base_url}{TILES_PREFIX}: {exc}") from None
    offset = start - n * TILE_WIDTH
    return entries[offset : offset + limit], b"".join(fetched)
