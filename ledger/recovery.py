"""Recovering the lost tail of the log: entries a restored backup lacks, taken back as they
were signed, and the tables rebuilt from them.

A registry restored from an older backup lacks the entries it published after the dump;
peers that mirrored the log still hold them under a checkpoint this registry signed
(federation/recovery.py fetches and checks the signature). `ledger_tail_recover` appends
them with their exact bytes (same seq, event bytes, leaf hash; the chain and the tree
recomputed) and, in the same transaction, rebuilds what they changed:

- the subject map's commitments among them (`ledger.subject_index_committed`): the map is
  brought to each committed size and must give the committed root;
- the domain tables, by the rebuilders the apps register in `TAIL_REBUILDERS` (the
  certificates app: transfers and their decisions, certificates/recovery.py).

Every entry's kind must have a rebuilder, or be one that changes no table; otherwise the
recovery is refused before anything is written, naming the kind and the seq.

Locks: the subject map's writer lock, then the tree head's (the checkpoint's order); the
queue must be empty, since queued events were made against tables without the tail.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ledger import storage
from ledger.errors import TailRecoveryRefused
from ledger.index import INDEX_EVENT, subject_index_lock, subject_index_update
from ledger.keys import log_key_history
from ledger.merkle import EMPTY_ROOT
from ledger.models import PendingEvent
from ledger.services import _resume_tree, store_batch
from ledger.verify.keyhistory import ROTATION_KIND
from ledger.verify.note import NoteError, VerifierKey
from registry.hooks import Hook

TAIL_REBUILDERS = Hook("ledger.tail_rebuilders")
"""(kinds, rebuild(seq, event)) pairs registered from AppConfig.ready(): `rebuild` applies
one recovered entry's change to the app's tables, as the service that wrote it did, or
raises TailRecoveryRefused when the tables do not hold what the event started from."""

TABLELESS_KINDS = frozenset({ROTATION_KIND})
"""Kinds whose entry is the whole of their state: the key history is read from the log."""


@dataclass(frozen=True)
class RecoveredTail:
    start: int
    end: int
    root: bytes
    kinds: dict[str, int]


def recoverable_kinds() -> set[str]:
    """Every kind `ledger_tail_recover` can take back."""
    kinds = set(TABLELESS_KINDS) | {INDEX_EVENT}
    for rebuilt, _rebuild in TAIL_REBUILDERS:
        kinds |= set(rebuilt)
    return kinds


def _rebuilder(kind: str) -> Callable[[int, dict[str, Any]], None] | None:
    for kinds, rebuild in TAIL_REBUILDERS:
        if kind in kinds:
            return rebuild
    return None


def _decode(start: int, events: Sequence[bytes]) -> list[dict[str, Any]]:
    known = recoverable_kinds()
    decoded = []
    for seq, raw in enumerate(events, start):
        try:
            event = json.loads(raw)
            kind = event["type"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TailRecoveryRefused(
                f"Entry {seq} is not a ledger event: {exc}", seq=seq
            ) from None
        if kind not in known:
            raise TailRecoveryRefused(
                f"Entry {seq} is a {kind} event, which the tables cannot be rebuilt from "
                f"(recoverable: {', '.join(sorted(known))}). Nothing was changed.",
                seq=seq,
                kind=kind,
            )
        decoded.append(event)
    return decoded


@transaction.atomic
def ledger_tail_recover(
    *, start: int, events: Sequence[bytes], root: bytes, signed_by: VerifierKey
) -> RecoveredTail:
    """Append `events` as entries `start`… and rebuild the tables they change, if the log
    they then make has the root `root` of a checkpoint `signed_by` signed, and `signed_by`
    is this log's key at that size by the key history the entries then give; all or
    nothing."""
    decoded = _decode(start, events)
    subject_index_lock()
    with connection.cursor() as cursor:
        size, head_root, chain = storage.tree_head_lock(cursor, empty_root=EMPTY_ROOT)
        if size != start:
            raise TailRecoveryRefused(
                f"The log has {size} entries, not {start}: fetch the tail again.", size=size
            )
        if PendingEvent.objects.exists():
            raise TailRecoveryRefused(
                "Events are queued for the integrator: they were written against tables "
                "without the lost tail. Recover before the registry takes writes "
                "(docs/operations.md, 'Backup and restore').",
                queued=PendingEvent.objects.count(),
            )
        tree = _resume_tree(size, head_root)
        sha256 = hashlib.sha256
        now = storage.db_time(timezone.now())
        entries, subjects, nodes = [], [], []
        for seq, (raw, event) in enumerate(zip(events, decoded, strict=True), start):
            raw = bytes(raw)
            leaf = sha256(b"\x00" + raw).digest()
            chain = sha256(chain + leaf).digest()
            at = parse_datetime(str(event.get("at", "")))
            if at is None:
                raise TailRecoveryRefused(f"Entry {seq} has no time.", seq=seq)
            # No pending event of this database ever held it: a negative id, unique per seq.
            entries.append(
                (seq, event["type"], event.get("actor", ""), raw, leaf, chain,
                 storage.db_time(at), now, -(seq + 1))
            )  # fmt: skip
            subjects.extend((key, seq) for key in dict.fromkeys(event.get("subject") or []))
            base = 2 * seq - seq.bit_count()
            nodes.extend((base + level, h) for level, _index, h in tree.append(leaf))
        if tree.root() != root:
            raise TailRecoveryRefused(
                f"Entries {start}..{tree.size - 1} on top of this log do not give the signed "
                f"root of size {tree.size}: the copy is not this log's.",
                size=tree.size,
            )
        store_batch(entries, subjects, nodes)
        storage.tree_head_update(
            cursor, size=tree.size, root=tree.root(), chain=chain, now=timezone.now()
        )
    try:
        current = log_key_history().key_at(start + len(events))
    except NoteError as exc:
        raise TailRecoveryRefused(f"The recovered key history does not verify: {exc}") from None
    if current != signed_by:
        raise TailRecoveryRefused(
            f"The checkpoint of size {start + len(events)} is signed by {signed_by.name}+"
            f"{signed_by.key_id.hex()}, not by the key this log's history names at that size.",
        )
    kinds: dict[str, int] = {}
    for seq, event in enumerate(decoded, start):
        kind = event["type"]
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == INDEX_EVENT:
            _recommit_map(seq, event)
        elif (rebuild := _rebuilder(kind)) is not None:
            rebuild(seq, event)
    return RecoveredTail(start=start, end=start + len(events), root=root, kinds=kinds)


def _recommit_map(seq: int, event: dict[str, Any]) -> None:
    """The map brought to the size the entry commits, as `checkpoint_create` did."""
    data = event.get("data") or {}
    if data.get("size") != seq:
        raise TailRecoveryRefused(f"Entry {seq} commits the map at another size.", seq=seq)
    root, _subjects = subject_index_update(seq)
    if base64.b64encode(root).decode("ascii") != data.get("root"):
        raise TailRecoveryRefused(
            f"The subject map recomputed at size {seq} differs from the root entry {seq} commits.",
            seq=seq,
        )
