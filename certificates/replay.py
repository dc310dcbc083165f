"""Rebuild every bundle and every account's holdings from the ledger events alone.

The events are decoded from their canonical bytes (the numbered entries in sequence
order, then the committed events the integrator has not numbered yet) and applied to
an empty registry; the result is compared with the bundle table. A difference means a
row was changed outside the services (or an event is wrong): either way, evidence.
On PostgreSQL the events and the tables are read in one REPEATABLE READ snapshot, so
concurrent writes do not show up as differences.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from certificates import events
from certificates.models import Bundle, WithdrawalItem
from ledger.replaying import ReplayProblems, events_of_kinds, replay_snapshot
from registry.hooks import Hook

ACTIVE, RESERVED, SPLIT = "active", "reserved", "split"
RETIRED, EXPIRED, WITHDRAWN, EXPORTED = "retired", "expired", "withdrawn", "exported"
STORED = "stored"

UNIT_EVENT_SOURCES = Hook("certificates.replay_unit_event_sources")
"""Events of other apps that carry unit changes made through the public reservation
service (which appends no event of its own), as (kinds, changes(kind, data)) pairs
registered from AppConfig.ready(). Each change is a move-shaped dict (`bundle_id`,
`moved_bundle_id`, `rest_bundle_id`, `unit_start`, `unit_end`, `volume_wh`) with
`action` ("reserve", "release", "deliver") and `account_id`, the holder afterwards.
Storage (`services/storing.py`) adds two: "store" (move-shaped: the units are cancelled
into a battery, status stored, same holder) and "issue" (`issuance`: a storage
issuance's data, shaped like `certificate.issued`'s)."""

REPLAY_EXTENSIONS = Hook("certificates.replay_extensions")
"""Replays of other apps' state from their own events (the market's balances and orders),
registered from AppConfig.ready(): callables returning a report with `summary` and
`problems`; `replay_ledger` runs them after the certificates' own replay."""


@dataclass(slots=True)
class ReplayedBundle:
    device_id: int
    unit_start: int
    unit_end: int
    account_id: int
    status: str
    parent_id: int | None

    def row(self) -> tuple:
        return (
            self.device_id,
            self.unit_start,
            self.unit_end,
            self.account_id,
            self.status,
            self.parent_id,
        )


@dataclass
class ReplayReport(ReplayProblems):
    events: int = 0
    bundles: int = 0
    holdings: dict[int, dict[str, int]] = field(default_factory=dict)


class _State:
    def __init__(self, report: ReplayReport) -> None:
        self.bundles: dict[int, ReplayedBundle] = {}
        self.flagged: set[int] = set()
        self.report = report
        self.where = ""

    def fail(self, text: str) -> None:
        self.report.problem(f"{self.where}: {text}")

    def new(self, pk: int, bundle: ReplayedBundle) -> None:
        if pk in self.bundles:
            self.fail(f"bundle {pk} created twice")
        self.bundles[pk] = bundle

    def get(self, pk: int, *statuses: str) -> ReplayedBundle | None:
        bundle = self.bundles.get(pk)
        if bundle is None:
            self.fail(f"bundle {pk} does not exist yet")
        elif statuses and bundle.status not in statuses:
            self.fail(f"bundle {pk} is {bundle.status}, expected {'/'.join(statuses)}")
        return bundle

    # ------------------------------------------------------------ event kinds

    def issuance(self, data: dict[str, Any]) -> None:
        device_id = data["device_id"]
        cursor = data["unit_start"]
        for _start, _end, unit_start, unit_end, rows in data["periods"]:
            if unit_start != cursor:
                self.fail(f"period units start at {unit_start}, expected {cursor}")
            at = unit_start
            for pk, account_id, b_start, b_end in rows:
                if b_start != at or b_end <= b_start:
                    self.fail(f"bundle {pk} range [{b_start}, {b_end}) does not follow {at}")
                self.new(pk, ReplayedBundle(device_id, b_start, b_end, account_id, ACTIVE, None))
                at = b_end
            if at != unit_end:
                self.fail(f"owners' bundles end at {at}, the period at {unit_end}")
            cursor = unit_end
        if cursor != data["unit_end"]:
            self.fail(f"periods end at unit {cursor}, the issuance at {data['unit_end']}")

    def move(self, move: dict[str, Any], *, account_id: int, status: str, holder: int) -> None:
        source = self.get(move["bundle_id"], ACTIVE)
        if source is None:
            return
        if source.account_id != holder:
            self.fail(f"bundle {move['bundle_id']} is held by {source.account_id}, not {holder}")
        volume = move["volume_wh"]
        cut = source.unit_start + volume
        if move["unit_start"] != source.unit_start or move["unit_end"] != cut:
            self.fail(f"move of bundle {move['bundle_id']} names units it does not take first")
        if cut > source.unit_end or volume <= 0:
            self.fail(f"bundle {move['bundle_id']} cannot give {volume} Wh")
            return
        if move["moved_bundle_id"] == move["bundle_id"]:
            if cut != source.unit_end or move["rest_bundle_id"] is not None:
                self.fail(f"bundle {move['bundle_id']} moved whole but only {volume} Wh given")
            source.account_id, source.status = account_id, status
            return
        source.status = SPLIT
        parent = move["bundle_id"]
        self.new(
            move["moved_bundle_id"],
            ReplayedBundle(source.device_id, source.unit_start, cut, account_id, status, parent),
        )
        if move["rest_bundle_id"] is None:
            self.fail(f"split of bundle {parent} has no rest bundle")
            return
        self.new(
            move["rest_bundle_id"],
            ReplayedBundle(
                source.device_id, cut, source.unit_end, source.account_id, ACTIVE, parent
            ),
        )

    def transfer(self, data: dict[str, Any]) -> None:
        pending = data["status"] == "pending"
        self.move(
            data,
            account_id=data["from_account_id"] if pending else data["to_account_id"],
            status=RESERVED if pending else ACTIVE,
            holder=data["from_account_id"],
        )

    def cut(self, data: dict[str, Any]) -> None:
        """A bundle cut into consecutive parts for several receivers, the rest kept."""
        for cut in data["cuts"]:
            self._cut_one(cut, data["receivers"])

    def _cut_one(self, cut: dict[str, Any], receivers: list[dict[str, Any]]) -> None:
        pk, holder = cut["bundle_id"], cut["from_account_id"]
        source = self.get(pk, ACTIVE)
        if source is None:
            return
        if source.account_id != holder:
            self.fail(f"bundle {pk} is held by {source.account_id}, not {holder}")
        at = source.unit_start
        for part in cut["parts"]:
            pending = part["status"] == "pending"
            account_id = holder if pending else receivers[part["receiver"]]["to_account_id"]
            status = RESERVED if pending else ACTIVE
            end = at + part["volume_wh"]
            if part["unit_start"] != at or part["unit_end"] != end or end <= at:
                self.fail(f"cut of bundle {pk} names units out of order")
            if end > source.unit_end:
                self.fail(f"bundle {pk} cannot give {end - source.unit_start} Wh")
                return
            if part["moved_bundle_id"] == pk:
                if len(cut["parts"]) != 1 or end != source.unit_end:
                    self.fail(f"bundle {pk} moved whole but only part of it given")
                source.account_id, source.status = account_id, status
                return
            self.new(
                part["moved_bundle_id"],
                ReplayedBundle(source.device_id, at, end, account_id, status, pk),
            )
            at = end
        source.status = SPLIT
        rest = cut["rest_bundle_id"]
        if (rest is None) != (at == source.unit_end):
            self.fail(f"cut of bundle {pk} leaves units {at}-{source.unit_end} unaccounted")
        if rest is not None:
            self.new(
                rest, ReplayedBundle(source.device_id, at, source.unit_end, holder, ACTIVE, pk)
            )

    def decision(self, kind: str, data: dict[str, Any]) -> None:
        bundle = self.get(data["bundle_id"], RESERVED)
        if bundle is None:
            return
        if bundle.account_id != data["from_account_id"]:
            self.fail(f"reserved bundle {data['bundle_id']} is not at the sender")
        if kind == events.TRANSFER_ACCEPTED:
            bundle.account_id = data["to_account_id"]
        bundle.status = ACTIVE

    def retire(self, data: dict[str, Any]) -> None:
        account_id = data["account_id"]
        for item in data["items"]:
            self.move(item, account_id=account_id, status=RETIRED, holder=account_id)

    def expire(self, data: dict[str, Any]) -> None:
        for pk in data["bundle_ids"]:
            bundle = self.get(pk, ACTIVE)
            if bundle is not None:
                bundle.status = EXPIRED

    def withdraw(self, data: dict[str, Any]) -> None:
        for pk in data["withdrawn_bundle_ids"]:
            bundle = self.get(pk, ACTIVE, RESERVED, EXPIRED)
            if bundle is not None:
                bundle.status = WITHDRAWN
        for pk in data["flagged_bundle_ids"]:
            if self.get(pk, RETIRED, EXPORTED, STORED) is not None:
                self.flagged.add(pk)

    def export(self, data: dict[str, Any]) -> None:
        holder = data["from_account_id"]
        self.move(data, account_id=holder, status=EXPORTED, holder=holder)

    def export_returned(self, data: dict[str, Any]) -> None:
        bundle = self.get(data["bundle_id"], EXPORTED)
        if bundle is not None:
            bundle.status = ACTIVE

    def imported(self, data: dict[str, Any]) -> None:
        self.new(
            data["bundle_id"],
            ReplayedBundle(
                data["device_id"],
                data["unit_start"],
                data["unit_end"],
                data["account_id"],
                ACTIVE,
                None,
            ),
        )

    def units(self, change: dict[str, Any]) -> None:
        """A change made through the reservation service, carried by another app's event."""
        action = change["action"]
        if action == "issue":
            self.issuance(change["issuance"])
            return
        account_id = change["account_id"]
        if action == "store":
            self.move(change, account_id=account_id, status=STORED, holder=account_id)
            return
        if action == "reserve":
            self.move(change, account_id=account_id, status=RESERVED, holder=account_id)
            return
        bundle = self.get(change["moved_bundle_id"], RESERVED)
        if bundle is None:
            return
        if action == "release" and bundle.account_id != account_id:
            self.fail(f"released bundle {change['moved_bundle_id']} changed account")
        if action not in ("release", "deliver"):
            self.fail(f"unknown unit change {action!r}")
        bundle.account_id, bundle.status = account_id, ACTIVE

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        for kinds, changes in UNIT_EVENT_SOURCES:
            if kind in kinds:
                for change in changes(kind, data):
                    self.units(change)
                return
        if "issuance" in data:
            self.issuance(data["issuance"])
        elif kind == events.TRANSFERRED:
            self.transfer(data)
        elif kind == events.BATCH_TRANSFERRED:
            for item in data["transfers"]:
                self.transfer(item)
        elif kind == events.CUT_TRANSFERRED:
            self.cut(data)
        elif kind in (
            events.TRANSFER_ACCEPTED,
            events.TRANSFER_REJECTED,
            events.TRANSFER_WITHDRAWN,
        ):
            self.decision(kind, data)
        elif kind == events.RETIRED:
            self.retire(data)
        elif kind == events.EXPIRED:
            self.expire(data)
        elif kind == events.WITHDRAWN:
            self.withdraw(data)
        elif kind == events.EXPORTED:
            self.export(data)
        elif kind == events.EXPORT_RETURNED:
            self.export_returned(data)
        elif kind == events.IMPORTED:
            self.imported(data)


def _kinds() -> list[str]:
    """The certificate events, and the other apps' events that move units (the hook)."""
    return list(events.KINDS) + [k for source, _ in UNIT_EVENT_SOURCES for k in source]


def replay_ledger() -> ReplayReport:
    """Replay the certificate events and compare the outcome with the tables."""
    report = ReplayReport()
    state = _State(report)
    with replay_snapshot():
        for where, kind, data in events_of_kinds(_kinds()):
            state.where = f"{where} ({kind})"
            report.events += 1
            try:
                state.apply(kind, data)
            except (KeyError, TypeError, ValueError) as exc:
                state.fail(f"malformed event data: {exc!r}")
        _compare(state, report)
    return report


def _compare(state: _State, report: ReplayReport) -> None:
    state.where = "tables"
    names = {value: label for value, label in Bundle.Status.choices}
    seen: set[int] = set()
    table_holdings: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        Bundle.objects.order_by("pk")
        .values_list(
            "pk", "device_id", "unit_start", "unit_end", "account_id", "status", "parent_id"
        )
        .iterator(chunk_size=5000)
    )
    for pk, device_id, unit_start, unit_end, account_id, status, parent_id in rows:
        row = (device_id, unit_start, unit_end, account_id, names.get(status, status), parent_id)
        seen.add(pk)
        if row[4] != SPLIT:
            table_holdings[account_id][row[4]] += unit_end - unit_start
        replayed = state.bundles.get(pk)
        if replayed is None:
            report.problem(f"bundle {pk} is in the table but no event created it: {row}")
        elif replayed.row() != row:
            report.problem(f"bundle {pk}: ledger says {replayed.row()}, table says {row}")
    for pk in sorted(set(state.bundles) - seen):
        report.problem(f"bundle {pk} is in the ledger but not in the table")
    flagged = set(
        WithdrawalItem.objects.filter(
            bundle__status__in=[
                Bundle.Status.RETIRED,
                Bundle.Status.EXPORTED,
                Bundle.Status.STORED,
            ]
        ).values_list("bundle_id", flat=True)
    )
    if flagged != state.flagged:
        report.problem(
            f"withdrawal flags differ: ledger {sorted(state.flagged)[:20]}, "
            f"table {sorted(flagged)[:20]}"
        )
    ledger_holdings: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for bundle in state.bundles.values():
        if bundle.status != SPLIT:
            ledger_holdings[bundle.account_id][bundle.status] += bundle.unit_end - bundle.unit_start
    for account_id in sorted(set(ledger_holdings) | set(table_holdings)):
        ledger_view = dict(ledger_holdings.get(account_id, {}))
        table_view = dict(table_holdings.get(account_id, {}))
        if ledger_view != table_view:
            report.problem(
                f"account {account_id} holdings: ledger {ledger_view}, table {table_view}"
            )
    report.bundles = len(state.bundles)
    report.holdings = {k: dict(v) for k, v in sorted(ledger_holdings.items())}
