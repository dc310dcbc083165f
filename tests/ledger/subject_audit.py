"""Which objects did a write change, and did its ledger events name them all?

`SubjectAudit` watches every `transaction.atomic` block opened while it watches (a
service's, and any nested in it): it copies the domain tables when the block opens, and
when it closes with events queued, compares the rows created,
updated or deleted with the subjects of those events. `RULES` says, per model, which
subject keys a changed row requires (by default its own `<kind>:<pk>`); models whose rows
are not recorded in the ledger by design are listed in `NOT_RECORDED` with the reason.

`replay_gaps` checks the log itself: it replays the certificate events with the
certificates replay (`certificates.replay`) and reports every bundle or account an event
changed without naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import connection
from django.db.transaction import Atomic

from ledger.models import LedgerEntry, PendingEvent
from ledger.subjects import SUBJECT_KINDS

Row = dict[str, Any]
Rule = Callable[[Row], Iterable[str]]

AUDITED_APPS = (
    "accounts",
    "assets",
    "certificates",
    "market",
    "consumers",
    "contracts",
    "charging",
    "notifications",
    "federation",
)


def own(kind: str) -> Rule:
    return lambda row: [f"{kind}:{row['pk']}"]


def refs(*pairs: tuple[str, str]) -> Rule:
    """The subjects a row's foreign keys point at: refs(("device", "device_id"))."""
    return lambda row: [f"{kind}:{row[attr]}" for kind, attr in pairs if row[attr] is not None]


def both(*rules: Rule) -> Rule:
    return lambda row: [key for rule in rules for key in rule(row)]


RULES: dict[str, Rule] = {
    "accounts.Membership": refs(("organisation", "organisation_id"), ("user", "user_id")),
    "accounts.ApiToken": refs(("user", "user_id")),
    "assets.DeviceOwner": refs(("device", "device_id")),
    "assets.MeterKey": refs(("meter", "meter_id")),
    # A reading is accepted with its batch (which names its devices) and marked issued by
    # the issuance (which names the device).
    "assets.Reading": refs(("device", "device_id")),
    "assets.PendingReading": refs(("device", "device_id")),
    "assets.DeviceGenerationDay": refs(("device", "device_id")),
    "certificates.DeviceUnitCounter": refs(("device", "device_id")),
    "certificates.IssuedPeriod": refs(("issuance", "issuance_id")),
    # A bundle names its holder: before and after a change, so both accounts of a move.
    "certificates.Bundle": both(own("bundle"), refs(("account", "account_id"))),
    "certificates.TransferPolicy": refs(("organisation", "organisation_id")),
    "certificates.RetirementItem": refs(("retirement", "retirement_id")),
    "certificates.WithdrawalItem": refs(("withdrawal", "withdrawal_id")),
    "certificates.ForeignDevice": refs(("device", "device_id")),
    # A storage certificate's origin is written with its issuance (which names it).
    "certificates.StorageOrigin": refs(("issuance", "issuance_id")),
    "market.MarketOperator": refs(("organisation", "organisation_id")),
    "market.JournalLine": refs(("journal_entry", "entry_id"), ("settlement_account", "account_id")),
    "market.OrderBook": refs(("market", "market_id")),
    # A settlement line is written with its settlement, which names the line's order.
    "market.SlotSettlementLine": refs(("slot_settlement", "settlement_id"), ("order", "order_id")),
    "consumers.SiteMeter": refs(("site", "site_id")),
    "consumers.CommunityDevice": refs(("community", "community_id"), ("device", "device_id")),
    "contracts.ContractParty": refs(
        ("contract", "contract_id"), ("organisation", "organisation_id")
    ),
    # A battery's state of charge and its layers are the battery's (storage balancing).
    "contracts.StorageState": refs(("device", "device_id")),
    "contracts.StorageLayer": refs(("device", "device_id")),
    "charging.SessionMessage": refs(("charging_session", "session_id")),
    "charging.MeterSample": refs(("charging_session", "session_id")),
    "charging.ReceiptHour": refs(("charging_receipt", "receipt_id")),
    "federation.Evidence": refs(("peer", "peer_id")),
}

NOT_RECORDED = {
    "consumers.DataAccess": "reads of household data are access records, not ledger events",
    "consumers.GatewayDeadLetter": "a gateway message that changed nothing",
    "notifications.Notification": "derived from the log",
    "notifications.NotificationPreference": "a reader's own setting",
    "notifications.DerivationCursor": "derived from the log",
    "notifications.WebhookDelivery": "delivery attempts, derived from the log",
    "federation.WitnessedCheckpoint": "witnessing is not an event (docs/federation.md)",
    "federation.Anchor": "anchoring progress is not an event",
    "federation.Cosignature": "cosignatures are not events",
    "federation.WitnessProgress": "witnessing is not an event",
    "federation.MirrorHead": "mirrored logs are not events",
    "federation.MirrorCheckpoint": "mirrored logs are not events",
    "federation.MirroredChunk": "mirrored logs are not events",
    "federation.MirrorNode": "mirrored logs are not events",
    "federation.PeerRequestNonce": "replay protection of peer requests",
}

IGNORED_FIELDS = {"accounts.User": {"last_login"}}


def rule_for(model) -> Rule:
    label = model._meta.label
    if label in RULES:
        return RULES[label]
    return own(getattr(model, "ledger_subject_type", None) or model._meta.model_name)


def audited_models() -> list:
    return [
        model
        for app in AUDITED_APPS
        for model in apps.get_app_config(app).get_models()
        if model._meta.label not in NOT_RECORDED and not model._meta.proxy
    ]


Snapshot = dict[str, dict[Any, Row]]


def snapshot(models: list) -> Snapshot:
    tables: Snapshot = {}
    for model in models:
        ignored = IGNORED_FIELDS.get(model._meta.label, set())
        names = [f.attname for f in model._meta.concrete_fields if f.attname not in ignored]
        pk = model._meta.pk.attname
        rows = model._base_manager.values(*names)
        tables[model._meta.label] = {row[pk]: {**row, "pk": row[pk]} for row in rows}
    return tables


def required_keys(models: list, before: Snapshot, after: Snapshot) -> dict[str, list[str]]:
    """subject key -> what about it changed ("certificates.Bundle 12 updated")."""
    required: dict[str, list[str]] = {}
    for model in models:
        label, rule = model._meta.label, rule_for(model)
        old, new = before[label], after[label]
        for pk in old.keys() | new.keys():
            was, now = old.get(pk), new.get(pk)
            if was == now:
                continue
            what = "created" if was is None else "deleted" if now is None else "updated"
            for row in (was, now):
                if row is not None:
                    for key in rule(row):
                        required.setdefault(key, []).append(f"{label} {pk} {what}")
    return required


@dataclass
class Gap:
    kinds: list[str]
    missing: dict[str, list[str]]

    def __str__(self) -> str:
        lines = [f"{'+'.join(self.kinds)} left out:"]
        lines += [f"  {key} ({', '.join(sorted(set(why)))})" for key, why in self.missing.items()]
        return "\n".join(lines)


@dataclass
class SubjectAudit:
    """Records, per audited atomic block that queued events, the subjects it failed to name.

    Every block at or below the depth where watching began is checked on its own, so a
    service nested in another (a retirement inside a charging match) answers for its own
    event, and the enclosing block for everything together. What an inner block left out
    may still be named by the event its enclosing block appends right after it (not by
    the events of a later inner block)."""

    gaps: list[Gap] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    unknown_kinds: set[str] = field(default_factory=set)
    transactions: int = 0

    @contextmanager
    def watching(self):
        models = audited_models()
        depth = len(connection.atomic_blocks)
        stack: list[_Frame] = []
        enter, exit_ = Atomic.__enter__, Atomic.__exit__
        audit = self

        def audited_enter(atomic):
            if len(connection.atomic_blocks) >= depth:
                if stack:
                    audit.settle(stack[-1])
                mark = _last_pending()
                stack.append(_Frame(len(connection.atomic_blocks), snapshot(models), mark))
            return enter(atomic)

        def audited_exit(atomic, exc_type, exc, tb):
            result = exit_(atomic, exc_type, exc, tb)
            if stack and stack[-1].depth == len(connection.atomic_blocks):
                frame = stack.pop()
                if exc_type is None:
                    audit.settle(frame)
                    gap = audit.check(models, frame)
                    if gap is None:
                        pass
                    elif stack:
                        # The enclosing service may name it in the event it appends next
                        # (a contract execution names the obligation its savepoint made).
                        stack[-1].open_gaps.append((gap, _last_pending()))
                    else:
                        audit.gaps.append(gap)
            return result

        Atomic.__enter__, Atomic.__exit__ = audited_enter, audited_exit
        try:
            yield self
        finally:
            Atomic.__enter__, Atomic.__exit__ = enter, exit_

    def settle(self, frame: _Frame) -> None:
        """Judge the gaps of a frame's closed inner blocks by the events the frame appended
        itself since each closed (not through another inner block)."""
        for gap, mark in frame.open_gaps:
            named = {key for _kind, subjects in _events_since(mark) for key in subjects}
            missing = {key: why for key, why in gap.missing.items() if key not in named}
            if missing:
                self.gaps.append(Gap(gap.kinds, missing))
        frame.open_gaps = []

    def check(self, models: list, frame: _Frame) -> Gap | None:
        queued = _events_since(frame.mark)
        if not queued:
            return None
        self.transactions += 1
        named: set[str] = set()
        for kind, subjects in queued:
            self.kinds.add(kind)
            named.update(subjects)
        self.unknown_kinds.update(
            key.partition(":")[0] for key in named if key.partition(":")[0] not in SUBJECT_KINDS
        )
        required = required_keys(models, frame.before, snapshot(models))
        missing = {key: why for key, why in required.items() if key not in named}
        return Gap([kind for kind, _ in queued], missing) if missing else None


@dataclass
class _Frame:
    depth: int
    before: Snapshot
    mark: int
    open_gaps: list[tuple[Gap, int]] = field(default_factory=list)


def _last_pending() -> int:
    queued = PendingEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    numbered = LedgerEntry.objects.order_by("-pending_id").values_list("pending_id", flat=True)
    return max(queued or 0, numbered.first() or 0)


def _events_since(mark: int) -> list[tuple[str, list[str]]]:
    """(kind, subjects) of the events queued after `mark`, whether or not the integrator
    has numbered them yet (it runs on commit when tasks are eager)."""
    events = {
        pk: (kind, list(subjects))
        for pk, kind, subjects in PendingEvent.objects.filter(pk__gt=mark).values_list(
            "pk", "kind", "subjects"
        )
    }
    for pk, raw in LedgerEntry.objects.filter(pending_id__gt=mark).values_list(
        "pending_id", "event"
    ):
        event = json.loads(bytes(raw))
        events[pk] = (event["type"], event["subject"])
    return [events[pk] for pk in sorted(events)]


# ---------------------------------------------------------------- the log, replayed


def replay_gaps() -> list[str]:
    """Every bundle or account a certificate event changes in the replay but does not name."""
    from certificates.replay import ReplayReport, _State

    state = _State(ReplayReport())
    gaps: list[str] = []
    for where, kind, data, subjects in _events():
        before = {pk: b.row() for pk, b in state.bundles.items()}
        state.where = where
        try:
            state.apply(kind, data)
        except (KeyError, TypeError, ValueError):
            continue  # a malformed event: replay_ledger reports those
        for pk, bundle in state.bundles.items():
            was = before.get(pk)
            if was == bundle.row():
                continue
            keys = {f"bundle:{pk}", f"account:{bundle.account_id}"}
            if was is not None:
                keys.add(f"account:{was[3]}")
            for key in sorted(keys - set(subjects)):
                gaps.append(f"{where} ({kind}) changes {key} without naming it")
    return gaps


def _events():
    entries = LedgerEntry.objects.order_by("seq").values_list("seq", "event")
    for seq, raw in entries:
        event = json.loads(bytes(raw))
        yield f"entry {seq}", event["type"], event["data"], event["subject"]
    for pk, raw in PendingEvent.objects.order_by("pk").values_list("pk", "event"):
        event = json.loads(bytes(raw))
        yield f"queued event {pk}", event["type"], event["data"], event["subject"]
