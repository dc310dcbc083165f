"""A mirror recomputes a peer's subject map and flags a peer that commits a wrong root."""

import base64
import io
import json

import pytest
from django.core.management import CommandError, call_command

from federation.index_check import mirror_index_check
from federation.models import (
    Evidence,
    MirrorIndexBucket,
    MirrorIndexRecord,
    MirrorIndexState,
    Peer,
)
from federation.replication import peer_replicate
from ledger.merkle import leaf_hash
from ledger.verify.subject_map import INDEX_EVENT, MAP_NAME, SubjectMap
from tests.federation.factories import peer_for_log
from tests.federation.fakes import FakeLog, FakePeerServer

pytestmark = pytest.mark.django_db


def _add(log: FakeLog, event: bytes) -> None:
    log.events.append(event)
    log.leaves.append(leaf_hash(event))


def _event(n: int) -> bytes:
    doc = {"type": "test.event", "actor": "system:test", "subject": [f"bundle:{n % 4}"], "data": {}}
    return json.dumps(doc, sort_keys=True).encode()


def _commitment(size: int, root: bytes) -> bytes:
    data = {"map": MAP_NAME, "size": size, "root": base64.b64encode(root).decode(), "subjects": 4}
    doc = {"type": INDEX_EVENT, "actor": "system:index", "subject": [], "data": data}
    return json.dumps(doc, sort_keys=True).encode()


def _log(*, lie: bool) -> FakeLog:
    """20 events, a true commitment, 10 more, and a commitment (wrong if `lie`)."""
    log, smap = FakeLog(), SubjectMap()
    for n in range(31):
        event = _commitment(n, smap.root()) if n == 20 else _event(n)
        _add(log, event)
        smap.add(n, event)
    root = bytes(32) if lie else smap.root()  # a peer hiding entries from its map
    _add(log, _commitment(31, root))
    return log


@pytest.fixture
def replicated(request):
    log = _log(lie=request.param)
    server = FakePeerServer(log, serve_bundles=True).start()
    peer = peer_for_log(log, base_url=server.url, is_mirror=True)
    assert peer_replicate(peer_id=peer.pk).outcome == "replicated"
    yield peer
    server.stop()


@pytest.mark.parametrize("replicated", [False], indirect=True)
def test_an_honest_peers_commitments_agree(replicated):
    result = mirror_index_check(peer_id=replicated.pk)
    assert (result.entries, result.commitments, result.wrong_at) == (32, 2, None)
    assert not Evidence.objects.exists()


@pytest.mark.parametrize("replicated", [True], indirect=True)
def test_a_peer_serving_a_wrong_index_root_is_flagged_with_evidence(replicated):
    result = mirror_index_check(peer_id=replicated.pk)
    assert (result.commitments, result.wrong_at) == (1, 31)
    evidence = Evidence.objects.get()
    assert evidence.kind == Evidence.Kind.WRONG_INDEX_ROOT
    assert "entry 31" in evidence.detail.lower() and evidence.second_note
    assert bytes(evidence.payload) == _commitment(31, bytes(32))
    assert Peer.objects.get(pk=replicated.pk).status == Peer.Status.FLAGGED


def test_the_replicate_command_checks_the_map_and_fails_on_a_wrong_root():
    log = _log(lie=True)
    server = FakePeerServer(log, serve_bundles=False).start()
    try:
        peer_for_log(log, base_url=server.url, is_mirror=True)
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("replicate", stdout=out)
        assert "entry 31 commits a wrong root (peer flagged)" in out.getvalue()
    finally:
        server.stop()


def _extend(log: FakeLog, count: int, *, lie: bool) -> None:
    """`count` more events about new and old subjects, then a commitment (wrong if `lie`)."""
    smap = SubjectMap()
    for seq, event in enumerate(log.events):
        smap.add(seq, event)
    for _ in range(count):
        event = _event(log.size * 7)  # bundle:0..3 again, and ...
        extra = json.loads(event)
        extra["subject"].append(f"account:{log.size}")  # ... a new subject each time
        event = json.dumps(extra, sort_keys=True).encode()
        _add(log, event)
        smap.add(log.size - 1, event)
    _add(log, _commitment(log.size, bytes(32) if lie else smap.root()))


def _stored_map(peer_id: int) -> tuple[int, dict[int, bytes], dict[bytes, tuple[int, bytes]]]:
    state = MirrorIndexState.objects.get(peer_id=peer_id)
    buckets = {
        b: bytes(h)
        for b, h in MirrorIndexBucket.objects.filter(peer_id=peer_id).values_list("bucket", "hash")
    }
    records = {
        bytes(k): (c, bytes(h))
        for k, c, h in MirrorIndexRecord.objects.filter(peer_id=peer_id).values_list(
            "key", "count", "chain"
        )
    }
    return state.size, buckets, records


@pytest.mark.parametrize("lie", [False, True])
def test_a_later_check_reads_only_the_new_entries_and_still_catches_a_wrong_root(lie):
    log = _log(lie=False)
    server = FakePeerServer(log, serve_bundles=True).start()
    try:
        peer = peer_for_log(log, base_url=server.url, is_mirror=True)
        assert peer_replicate(peer_id=peer.pk).outcome == "replicated"
        first = mirror_index_check(peer_id=peer.pk)
        assert (first.entries, first.read, first.commitments) == (32, 32, 2)

        _extend(log, 40, lie=lie)
        assert peer_replicate(peer_id=peer.pk).outcome == "replicated"
        second = mirror_index_check(peer_id=peer.pk)
    finally:
        server.stop()

    if lie:
        assert (second.wrong_at, second.read, second.commitments) == (72, 40, 0)
        assert Evidence.objects.get().kind == Evidence.Kind.WRONG_INDEX_ROOT
        return
    assert (second.entries, second.read, second.commitments, second.wrong_at) == (73, 41, 1, None)
    assert not Evidence.objects.exists()
    # What is stored is the map of the 73 entries, as computed from nothing.
    fresh = SubjectMap()
    for seq, event in enumerate(log.events):
        fresh.add(seq, event)
    size, buckets, records = _stored_map(peer.pk)
    assert size == 73
    assert records == fresh.values
    assert buckets == fresh.bucket_hashes(range(65536))
    assert mirror_index_check(peer_id=peer.pk).read == 0  # nothing new: nothing read


@pytest.mark.parametrize("replicated", [False], indirect=True)
def test_a_stored_map_that_no_longer_matches_the_mirror_is_rebuilt(replicated):
    mirror_index_check(peer_id=replicated.pk)
    MirrorIndexState.objects.filter(peer_id=replicated.pk).update(last_leaf=bytes(32))
    MirrorIndexRecord.objects.filter(peer_id=replicated.pk).update(count=99)  # and garbage

    again = mirror_index_check(peer_id=replicated.pk)

    assert (again.read, again.commitments, again.wrong_at) == (32, 2, None)
    _size, _buckets, records = _stored_map(replicated.pk)
    assert 99 not in {count for count, _chain in records.values()}
