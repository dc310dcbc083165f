"""Replication's network half: fetching a peer's pages of entries, proofs and checkpoints.

`federation.replication` checks and stores what this fetches; nothing fetched here is
trusted. Entries come from the peer's tlog-tiles when they reach the size replicated to
(federation/tiles_source.py), else GridProof entry bundles, else the ledger API's JSON
pages, several ranges in flight at once (`_batches`).
"""

import base64
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings

from federation import client, tiles_source
from federation.client import Limits, PeerResponseInvalid
from federation.models import Peer
from federation.protocol import BUNDLE_CONTENT_TYPE, ProtocolError, parse_bundle
from ledger.verify.note import NoteError, b64decode

CHECKPOINT_PATH = "/api/v1/ledger/checkpoint"
ENTRIES_PATH = "/api/v1/ledger/entries/?start={start}&limit={limit}"
BUNDLE_PATH = "/api/v1/federation/log/entries/?start={start}&limit={limit}"
CONSISTENCY_PATH = "/api/v1/ledger/proofs/consistency/?first={first}&second={second}"


class ReplicationFailed(Exception):
    """This run failed for a reason that may pass (network, malformed or short answers)."""


def _limits() -> Limits:
    return Limits(
        timeout=settings.FEDERATION_HTTP_TIMEOUT_SECONDS,
        max_bytes=settings.FEDERATION_MAX_RESPONSE_BYTES,
    )


def _get(url: str, accept: str = "application/json") -> client.PeerResponse:
    response = client.get(url, limits=_limits(), accept=accept)
    if response.status != 200:
        text = response.body[:300].decode("utf-8", "replace")
        raise ReplicationFailed(f"HTTP {response.status} from {url}: {text}")
    return response


def _fetch_consistency(peer: Peer, first: int, second: int) -> list[bytes]:
    url = client.join(peer.base_url, CONSISTENCY_PATH.format(first=first, second=second))
    doc = _get(url).json()
    if not isinstance(doc, dict) or doc.get("first") != first or doc.get("second") != second:
        raise ReplicationFailed(f"the peer sent a consistency proof for other sizes: {url}")
    proof = doc.get("proof")
    if not isinstance(proof, list) or len(proof) > 64:
        raise ReplicationFailed("malformed consistency proof")
    try:
        hashes = [b64decode(h, "proof hash") for h in proof]
    except (NoteError, AttributeError, TypeError) as exc:
        raise ReplicationFailed(f"malformed consistency proof: {exc}") from None
    return hashes


@dataclass(frozen=True)
class _Page:
    start: int
    events: list[bytes]
    leaf_hashes: list[str | None]
    raw: bytes
    bundled: bool = False  # `raw` is the events as an entry bundle, what a mirror stores


def _parse_page(body: bytes, start: int, limit: int) -> _Page:
    response = client.PeerResponse(200, {}, body)
    doc = response.json()
    items = doc.get("entries") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise PeerResponseInvalid("entries page has no `entries` list")
    if len(items) > limit:
        raise PeerResponseInvalid(f"{len(items)} entries in a page of at most {limit}")
    events: list[bytes] = []
    leaves: list[str | None] = []
    decode = base64.b64decode
    for offset, item in enumerate(items):
        try:
            seq = item["seq"]
            encoded = item["event_b64"]
            event = decode(encoded, validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise PeerResponseInvalid(f"malformed entry at seq {start + offset}: {exc}") from None
        if seq != start + offset:
            raise PeerResponseInvalid(f"expected entry {start + offset}, got {seq!r}")
        events.append(event)
        leaves.append(item.get("leaf_hash"))
    return _Page(start=start, events=events, leaf_hashes=leaves, raw=body)


@dataclass(frozen=True)
class _Source:
    """Where a run reads entries: GridProof entry bundles, or the ledger API's JSON pages."""

    peer: Peer
    bundles: bool
    tiles_size: int = 0  # > 0: the peer's tlog-tiles, covering this size

    @property
    def page_size(self) -> int:
        if self.tiles_size:
            return tiles_source.TILE_WIDTH
        if self.bundles:
            return settings.FEDERATION_REPLICATION_BUNDLE_SIZE
        return settings.FEDERATION_REPLICATION_PAGE_SIZE


def _source(peer: Peer, end: int) -> _Source:
    """The peer's tiles if they reach `end`; entry bundles if it serves them (a GridProof
    registry does), else JSON pages."""
    if (tiles := tiles_source.peer_tiles_size(peer, _limits())) >= end:
        return _Source(peer, bundles=False, tiles_size=tiles)
    url = client.join(peer.base_url, BUNDLE_PATH.format(start=0, limit=1))
    response = client.get(url, limits=_limits(), accept=BUNDLE_CONTENT_TYPE)
    if response.status == 200 and response.content_type == BUNDLE_CONTENT_TYPE:
        return _Source(peer, bundles=True)
    if response.status in (404, 405, 406):
        return _Source(peer, bundles=False)
    raise ReplicationFailed(f"HTTP {response.status} from {url}")


def _fetch_page(source: _Source, start: int, limit: int) -> _Page:
    peer = source.peer
    if source.tiles_size:
        try:
            events, raw = tiles_source.tiles_entries(
                peer, source.tiles_size, start, limit, _limits()
            )
        except tiles_source.TilesUnavailable as exc:
            raise ReplicationFailed(str(exc)) from None
        return _Page(start=start, events=events, leaf_hashes=[None] * len(events), raw=raw)
    if source.bundles:
        url = client.join(peer.base_url, BUNDLE_PATH.format(start=start, limit=limit))
        body = _get(url, accept=BUNDLE_CONTENT_TYPE).body
        try:
            events = parse_bundle(body, limit)
        except ProtocolError as exc:
            raise ReplicationFailed(f"{url}: {exc}") from None
        return _Page(
            start=start, events=events, leaf_hashes=[None] * len(events), raw=body, bundled=True
        )
    url = client.join(peer.base_url, ENTRIES_PATH.format(start=start, limit=limit))
    try:
        return _parse_page(_get(url).body, start, limit)
    except PeerResponseInvalid as exc:
        raise ReplicationFailed(f"{url}: {exc}") from None


def _fetch_range(source: _Source, start: int, end: int) -> list[_Page]:
    """Entries [start, end) in as few requests as the peer allows (short pages continue)."""
    pages: list[_Page] = []
    while start < end:
        page = _fetch_page(source, start, min(source.page_size, end - start))
        if not page.events:
            raise ReplicationFailed(
                f"the peer served no entries from {start} although its checkpoint covers {end}"
            )
        pages.append(page)
        start += len(page.events)
    return pages


def _batches(
    source: _Source, start: int, end: int, proofs_to: int | None = None
) -> Iterator[tuple[int, int, list[_Page], Future | None]]:
    """(start, end, pages, proof) per batch, fetching up to CONCURRENCY page ranges ahead.

    With `proofs_to`, the consistency proof from each batch's end to that size is fetched
    in the same pool when the batch's first range is (`proof` a Future of its hashes; None
    for a batch ending at `proofs_to`), so checking a batch does not wait for a round trip.
    """
    batch_size = settings.FEDERATION_REPLICATION_BATCH_SIZE
    page_size = source.page_size
    concurrency = settings.FEDERATION_REPLICATION_CONCURRENCY
    ranges = [(a, min(a + page_size, end)) for a in range(start, end, page_size)]
    # A batch ends after the first range that makes it batch_size long, or at `end`.
    batch_ends, batch_start = {}, start
    for _a, b in ranges:
        if b - batch_start >= batch_size or b == end:
            batch_ends[batch_start] = b
            batch_start = b
    with ThreadPoolExecutor(concurrency) as pool:
        window: deque[tuple[int, int, Future]] = deque()
        proofs: dict[int, Future] = {}
        pending = iter(ranges)

        def submit(a: int, b: int) -> None:
            window.append((a, b, pool.submit(_fetch_range, source, a, b)))
            last = batch_ends.get(a)
            if proofs_to is not None and last is not None and last != proofs_to:
                proofs[last] = pool.submit(_fetch_consistency, source.peer, last, proofs_to)

        try:
            for a, b in pending:
                submit(a, b)
                if len(window) >= concurrency:
                    break
            batch_start, pages = start, []
            while window:
                a, b, future = window.popleft()
                pages.extend(future.result())
                following = next(pending, None)
                if following is not None:
                    submit(*following)
                if b == batch_ends.get(batch_start):
                    yield batch_start, b, pages, proofs.pop(b, None)
                    batch_start, pages = b, []
        finally:
            for _a, _b, future in window:
                future.cancel()
            for future in proofs.values():
                future.cancel()
