"""Replication from a fake peer log (ledger.merkle + ledger.signing behind http.server)."""

import datetime as dt
import io
import itertools

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from federation.models import (
    Evidence,
    MirrorCheckpoint,
    MirroredChunk,
    MirrorHead,
    MirrorNode,
    Peer,
)
from federation.protocol import parse_bundle
from federation.replication import _batches, _source, peer_replicate
from federation.selectors import MIRROR_LOWEST_STORED_LEVEL, mirror_events
from ledger.merkle import CompactRange
from ledger.signing import sign_checkpoint
from tests.conftest import requires_postgres
from tests.federation.factories import ledger_event_count, ledger_kinds, peer_for_log
from tests.federation.fakes import FakeLog, FakePeerServer, b64, make_signer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_batches(settings):
    # Several pages per batch and several batches per run, on a small log.
    settings.FEDERATION_REPLICATION_PAGE_SIZE = 100
    settings.FEDERATION_REPLICATION_BUNDLE_SIZE = 250
    settings.FEDERATION_REPLICATION_BATCH_SIZE = 450
    settings.FEDERATION_REPLICATION_CONCURRENCY = 3
    settings.FEDERATION_HTTP_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def log() -> FakeLog:
    log = FakeLog()
    log.append(1234)
    return log


@pytest.fixture(
    params=["json-pages", "entry-bundles", "tlog-tiles"],
    ids=["json-pages", "entry-bundles", "tlog-tiles"],
)
def server(log, request):
    """The peer serves the ledger API's JSON pages, and GridProof entry bundles or its
    tlog-tiles or neither."""
    server = FakePeerServer(
        log,
        serve_bundles=request.param == "entry-bundles",
        serve_tiles=request.param == "tlog-tiles",
    ).start()
    yield server
    server.stop()


@pytest.fixture
def peer(log, server) -> Peer:
    return peer_for_log(log, base_url=server.url, is_mirror=True)


def head(peer) -> MirrorHead:
    return MirrorHead.objects.get(peer=peer)


def mirrored_events(peer) -> list[bytes]:
    events = mirror_events(peer_id=peer.pk, ranges=[(0, 10**9)])
    assert sorted(events) == list(range(len(events)))
    return [events[seq] for seq in range(len(events))]


def chunk_spans(peer) -> list[tuple[int, int]]:
    """[first, end) of each stored chunk, in order."""
    chunks = MirroredChunk.objects.filter(peer=peer).order_by("seq").values_list("seq", "events")
    return [(seq, seq + len(parse_bundle(bytes(events), 16))) for seq, events in chunks]


def test_catch_up_stores_a_verified_mirror(log, server, peer):
    before = ledger_event_count()

    result = peer_replicate(peer_id=peer.pk)

    assert (result.outcome, result.size_before, result.size_after) == ("replicated", 0, 1234)
    assert mirrored_events(peer) == log.events
    row = head(peer)
    assert (row.size, bytes(row.root), row.seen_size) == (1234, log.root(), 1234)
    assert row.behind_since is None and row.claimed_until is None and row.attempts == 0
    # the frontier resumes the tree exactly
    frontier = [bytes(row.frontier)[i : i + 32] for i in range(0, len(row.frontier), 32)]
    assert CompactRange(1234, frontier).root() == log.root()
    # every complete subtree above the leaves is stored: 2n - popcount(n) nodes, less n leaves
    # complete subtrees of 16 leaves and up; smaller ones are recomputed from the entries
    stored = sum(1234 >> level for level in range(MIRROR_LOWEST_STORED_LEVEL, 11))
    assert MirrorNode.objects.filter(peer=peer).count() == stored == 150
    assert list(MirrorCheckpoint.objects.filter(peer=peer).values_list("size", "note")) == [
        (1234, log.checkpoint())
    ]
    # batches in between were checked by consistency proofs to the checkpoint
    assert sum("/proofs/consistency/" in path for path in server.requests) == 2
    # mirroring is bookkeeping, not a ledger event
    assert ledger_event_count() == before


def test_growth_is_replicated_incrementally(log, server, peer):
    peer_replicate(peer_id=peer.pk)
    log.append(300)
    server.requests.clear()

    result = peer_replicate(peer_id=peer.pk)

    assert (result.outcome, result.size_before, result.size_after) == ("replicated", 1234, 1534)
    assert mirrored_events(peer) == log.events
    assert MirrorCheckpoint.objects.filter(peer=peer).count() == 2
    # the first request after the checkpoint is the fork check from the mirror's size
    assert server.requests[1].startswith("/api/v1/ledger/proofs/consistency/?first=1234&")
    entries_requested = [p for p in server.requests if "/entries/?start=" in p]
    assert all("start=1" in p or "start=0&limit=1" in p for p in entries_requested)


def test_up_to_date_is_a_no_op(log, server, peer):
    peer_replicate(peer_id=peer.pk)

    result = peer_replicate(peer_id=peer.pk)

    assert result.outcome == "up_to_date"
    assert len(mirrored_events(peer)) == 1234


def test_max_entries_stops_and_the_next_run_continues(log, server, peer):
    first = peer_replicate(peer_id=peer.pk, max_entries=500)
    assert (first.size_after, head(peer).seen_size) == (500, 1234)
    assert head(peer).behind_since is not None
    assert not MirrorCheckpoint.objects.exists()

    second = peer_replicate(peer_id=peer.pk)
    assert second.size_after == 1234
    assert mirrored_events(peer) == log.events
    assert head(peer).behind_since is None
    # chunks of up to 16 entries that never cross a multiple of 16, the second run's first
    # one short so that the following ones line up again
    spans = chunk_spans(peer)
    assert spans[0][0] == 0 and spans[-1][1] == 1234
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(b - a <= 16 and (b - 1) // 16 == a // 16 for a, b in spans)
    assert (496, 500) in spans and (500, 512) in spans


def test_forged_entry_is_detected_and_nothing_stored(log, server, peer):
    # given the peer serves entry 77 with other bytes than it signed
    forged = b'{"type":"test.event","n":77,"p":"forged"}'
    server.forged[77] = forged
    before = ledger_event_count()

    result = peer_replicate(peer_id=peer.pk)

    # then the peer is flagged, evidence kept, and nothing of the bad batch stored
    assert result.outcome == "flagged"
    assert not MirroredChunk.objects.filter(peer=peer).exists()
    assert not MirrorNode.objects.filter(peer=peer).exists()
    assert head(peer).size == 0
    evidence = Evidence.objects.get(peer=peer)
    assert evidence.kind == Evidence.Kind.FORGED_ENTRIES
    assert evidence.second_note == log.checkpoint()
    assert evidence.data["start"] == 0
    if server.serve_bundles or server.serve_tiles:
        # bundles carry no leaf hash field to point at the entry; the raw bytes are kept
        assert evidence.data["suspect_seqs"] == []
        assert forged in bytes(evidence.payload)
    else:
        assert evidence.data["suspect_seqs"] == [77]
        assert b64(forged).encode() in bytes(evidence.payload)
    peer.refresh_from_db()
    assert peer.status == Peer.Status.FLAGGED
    assert ledger_event_count() == before + 1
    assert ledger_kinds()[-1] == "peer.flagged"
    # and a flagged peer is not replicated any more
    assert peer_replicate(peer_id=peer.pk).outcome == "skipped"


@pytest.mark.parametrize(
    ("forged", "stored_pages", "stored_tiles", "checked_by_proof"),
    [(700, 500, 512, True), (1100, 1000, 1024, False)],
    ids=["middle-batch-by-its-proof", "last-batch-by-the-root"],
)
def test_a_forged_entry_in_a_later_batch_keeps_the_good_batches(
    log, server, peer, forged, stored_pages, stored_tiles, checked_by_proof
):
    # given an entry forged in a later batch: a middle one, checked with the consistency
    # proof fetched ahead of it, or the last, checked against the checkpoint's root.
    # Batches end on page boundaries: [0, 500), [500, 1000), [1000, 1234) (tiles: pages of
    # 256, so [0, 512), [512, 1024), [1024, 1234))
    server.forged[forged] = b"{}"

    # when
    result = peer_replicate(peer_id=peer.pk)

    # then the batches before it are stored, its own is refused and kept as evidence
    assert result.outcome == "flagged"
    stored = stored_tiles if server.serve_tiles else stored_pages
    assert head(peer).size == stored
    assert mirrored_events(peer) == log.events[:stored]
    assert not MirrorCheckpoint.objects.exists()
    evidence = Evidence.objects.get()
    assert evidence.kind == Evidence.Kind.FORGED_ENTRIES
    assert evidence.data["start"] == stored
    assert bool(evidence.data["proof"]) is checked_by_proof


def test_batches_come_with_the_consistency_proof_from_their_end(log, server, peer):
    # given the peer's source of entries
    source = _source(peer, log.size)

    # when
    batches = list(_batches(source, 0, log.size, log.size))

    # then every batch but the last comes with its proof, fetched ahead
    ends = [end for _start, end, _pages, _proof in batches]
    assert ends[-1] == log.size and len(ends) > 2
    assert [start for start, *_ in batches] == [0, *ends[:-1]]
    for start, end, pages, proof in batches:
        assert sum(len(page.events) for page in pages) == end - start
        if end == log.size:
            assert proof is None
        else:
            assert proof.result() == log.consistency(end, log.size)


def test_forged_entry_with_a_matching_leaf_hash_is_still_detected(log, server, peer):
    # the peer also serves the forged entry's own leaf hash: only the root check catches it
    server.forged[5] = b"{}"
    server.lie_about_leaf_hashes = True

    assert peer_replicate(peer_id=peer.pk).outcome == "flagged"
    assert Evidence.objects.get().data["suspect_seqs"] == []


def test_inconsistent_checkpoints_are_detected(log, server, peer):
    # given a mirror of 1234 entries
    peer_replicate(peer_id=peer.pk)
    # when the peer rewrites its history and signs a longer tree
    fork = FakeLog(log.origin)
    fork.append(1300, prefix="fork")
    server.log = fork

    result = peer_replicate(peer_id=peer.pk)

    assert result.outcome == "flagged"
    evidence = Evidence.objects.get(peer=peer)
    assert evidence.kind == Evidence.Kind.INCONSISTENT_CHECKPOINTS
    assert (evidence.first_note, evidence.second_note) == (log.checkpoint(), fork.checkpoint())
    assert head(peer).size == 1234
    assert len(mirrored_events(peer)) == 1234


def test_equivocation_at_the_mirror_size_is_detected(log, server, peer):
    peer_replicate(peer_id=peer.pk)
    server.checkpoint_note = log.checkpoint(1234, root=bytes(32))

    result = peer_replicate(peer_id=peer.pk)

    assert result.outcome == "flagged"
    evidence = Evidence.objects.get(peer=peer)
    assert evidence.kind == Evidence.Kind.EQUIVOCATION
    assert evidence.first_note == log.checkpoint()


def test_an_older_consistent_checkpoint_is_fine(log, server, peer):
    peer_replicate(peer_id=peer.pk)
    server.served_size = 1000  # a lagging replica of the peer

    assert peer_replicate(peer_id=peer.pk).outcome == "up_to_date"
    assert not Evidence.objects.exists()


def test_an_older_inconsistent_checkpoint_is_detected(log, server, peer):
    peer_replicate(peer_id=peer.pk)
    server.checkpoint_note = log.checkpoint(1000, root=bytes(32))

    assert peer_replicate(peer_id=peer.pk).outcome == "flagged"
    assert Evidence.objects.get().kind == Evidence.Kind.INCONSISTENT_CHECKPOINTS


def test_checkpoint_signed_by_another_key_fails_without_evidence(log, server, peer):
    server.checkpoint_note = sign_checkpoint(
        make_signer(log.origin, 42), log.origin, log.size, log.root()
    )

    result = peer_replicate(peer_id=peer.pk)

    assert result.outcome == "failed"
    assert "does not verify" in result.error
    assert not Evidence.objects.exists()
    peer.refresh_from_db()
    assert peer.status == Peer.Status.ACTIVE


def test_truncated_response_fails_and_stores_nothing(log, server, peer):
    server.truncate = True

    result = peer_replicate(peer_id=peer.pk)

    assert result.outcome == "failed"
    assert "cut off" in result.error
    assert not MirroredChunk.objects.exists()
    row = head(peer)
    assert row.attempts == 1 and row.next_attempt_at > timezone.now()
    assert row.claimed_until is None
    assert not Evidence.objects.exists()


def test_oversized_response_fails_and_stores_nothing(log, server, peer, settings):
    settings.FEDERATION_MAX_RESPONSE_BYTES = 50_000
    server.pad_bytes = 60_000

    result = peer_replicate(peer_id=peer.pk)

    assert result.outcome == "failed"
    assert "exceeds" in result.error
    assert not MirroredChunk.objects.exists()


def test_short_pages_are_continued(log, server, peer):
    server.page_limit = 30  # the peer serves fewer entries per page than asked

    assert peer_replicate(peer_id=peer.pk).size_after == 1234
    assert mirrored_events(peer) == log.events


def test_slow_peer_times_out(log, server, peer, settings):
    settings.FEDERATION_HTTP_TIMEOUT_SECONDS = 0.3
    server.delay = 1.0

    result = peer_replicate(peer_id=peer.pk)

    assert result.outcome == "failed"
    assert "timed out" in result.error
    assert not MirroredChunk.objects.exists()


def test_peer_down_backs_off_then_catches_up(log, server, peer):
    server.stop()
    result = peer_replicate(peer_id=peer.pk)
    assert result.outcome == "failed"
    # not due during the back-off
    assert peer_replicate(peer_id=peer.pk).outcome == "skipped"

    restarted = FakePeerServer(log).start()
    try:
        Peer.objects.filter(pk=peer.pk).update(base_url=restarted.url)
        MirrorHead.objects.filter(peer=peer).update(
            next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
        )
        assert peer_replicate(peer_id=peer.pk).size_after == 1234
    finally:
        restarted.stop()


def test_not_a_mirror_is_skipped(log, server, peer):
    Peer.objects.filter(pk=peer.pk).update(is_mirror=False)
    assert peer_replicate(peer_id=peer.pk).outcome == "skipped"
    assert server.requests == []


def test_replicate_command(log, server, peer):
    out = io.StringIO()

    call_command("replicate", "--peer", log.origin, stdout=out)

    assert "replicated, 0 -> 1234 entries (1234 new)" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("replicate", "--peer", "nobody.example")


def test_replicate_command_reports_failure(log, server, peer):
    server.truncate = True
    with pytest.raises(CommandError):
        call_command("replicate", stdout=io.StringIO())


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_catch_up_with_the_storing_thread(log, server, peer, settings):
    # Outside a transaction (as in a Celery task) batches are stored by a second thread
    # while the next one is fetched and checked.
    settings.FEDERATION_REPLICATION_BATCH_SIZE = 200
    log.append(766)

    result = peer_replicate(peer_id=peer.pk)

    assert (result.outcome, result.size_after) == ("replicated", 2000)
    assert mirrored_events(peer) == log.events
    assert bytes(head(peer).root) == log.root()
    assert MirrorCheckpoint.objects.filter(peer=peer).count() == 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_storing_thread_stops_at_a_forged_batch(log, server, peer, settings):
    settings.FEDERATION_REPLICATION_BATCH_SIZE = 200
    server.forged[1100] = b"{}"

    result = peer_replicate(peer_id=peer.pk)

    assert result.outcome == "flagged"
    assert result.size_after == head(peer).size < 1100
    assert mirrored_events(peer) == log.events[: result.size_after]


def test_tiles_are_read_when_they_cover_the_checkpoint(log):
    # given a peer serving tiles and nothing but the JSON pages besides
    server = FakePeerServer(log, serve_tiles=True).start()
    try:
        peer = peer_for_log(log, base_url=server.url, is_mirror=True)

        # when
        result = peer_replicate(peer_id=peer.pk)
    finally:
        server.stop()

    # then: the entries came from the entry bundles only
    assert result.outcome == "replicated"
    assert mirrored_events(peer) == log.events
    assert any(p.startswith("/tlog/tile/entries/004.p/210") for p in server.requests)
    assert not any(p.startswith("/api/v1/ledger/entries/") for p in server.requests)


def test_tiles_behind_the_checkpoint_are_passed_over_for_the_api(log):
    # given tiles written at size 1000 while the API's checkpoint is at 1234
    server = FakePeerServer(log, serve_tiles=True).start()
    server.tiles_size = 1000
    try:
        peer = peer_for_log(log, base_url=server.url, is_mirror=True)

        # when
        result = peer_replicate(peer_id=peer.pk)
    finally:
        server.stop()

    # then
    assert result.outcome == "replicated"
    assert mirrored_events(peer) == log.events
    assert not any(p.startswith("/tlog/tile/") for p in server.requests)
    assert any(p.startswith("/api/v1/ledger/entries/") for p in server.requests)


# ---------------------------------------------------------------- the peer rotates its log key


def test_a_mirror_follows_the_peers_key_rotation_and_stores_the_new_key(log, server, peer):
    # given: a mirror of the first 1234 entries, then the peer rotates and grows
    assert peer_replicate(peer_id=peer.pk).outcome == "replicated"
    new = make_signer(log.origin, 8)
    seq = log.rotate(new)
    log.append(10)
    before = ledger_event_count()

    # when
    result = peer_replicate(peer_id=peer.pk)

    # then: replicated past the announcement, the new key stored with an event
    assert result.outcome == "replicated" and head(peer).size == log.size
    peer.refresh_from_db()
    assert peer.log_vkey == new.vkey
    assert ledger_event_count() == before + 1
    assert ledger_kinds()[-1] == "peer.log_key_rotated"
    assert MirrorCheckpoint.objects.filter(peer=peer, size=log.size).exists()
    assert seq == 1234
    # and the next checkpoint verifies with the stored key directly
    log.append(3)
    assert peer_replicate(peer_id=peer.pk).outcome == "replicated"


def test_a_forged_rotation_is_refused_and_the_key_kept(log, server, peer):
    # given: the peer's log "announces" a key signed by that key itself, not the old one
    old_vkey = peer.log_vkey
    attacker = make_signer(log.origin, 66)
    log.rotate(attacker, signed_by=attacker)
    log.append(5)

    # when
    result = peer_replicate(peer_id=peer.pk)

    # then
    assert result.outcome == "failed"
    assert "not signed by the old key" in result.error
    peer.refresh_from_db()
    assert peer.log_vkey == old_vkey
    assert head(peer).size == 0 and not MirroredChunk.objects.filter(peer=peer).exists()


def test_the_new_key_signing_before_its_announcement_is_refused(log, server, peer):
    # given: the rotated key signs a checkpoint of the tree without its announcement
    new = make_signer(log.origin, 8)
    size = log.size
    log.rotate(new)
    server.checkpoint_note = sign_checkpoint(new, log.origin, size, log.root(size))
    server.served_size = size

    # when
    result = peer_replicate(peer_id=peer.pk)

    # then: the history served at that size holds no announcement of the key
    assert result.outcome == "failed" and "not signed by the log key" in result.error
    assert head(peer).size == 0


def test_the_old_key_after_the_rotation_is_refused(log, server, peer):
    old = log.signer
    log.rotate(make_signer(log.origin, 8))
    log.append(2)
    server.checkpoint_note = sign_checkpoint(old, log.origin, log.size, log.root())

    result = peer_replicate(peer_id=peer.pk)

    # then: the note verifies with the key we hold, but the entries it covers retire that
    # key at seq 1234: refused before the batch holding the announcement is stored
    assert result.outcome == "failed"
    assert "signed by its retired key" in result.error and "entry 1234" in result.error
    peer.refresh_from_db()
    assert peer.log_vkey == old.vkey
    assert head(peer).size <= 1234
