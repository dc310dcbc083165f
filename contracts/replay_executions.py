"""Replay of contracts from the ledger alone: contracts, parties, agreements, proposals,
executions with their results, and settlement obligations with their settlement state.

`replay_contracts` (a `certificates.replay_extensions` entry, so `manage.py replay_ledger`
runs it) reads every `contract.*` event in log order, re-derives each table's rows from
them, and compares them field by field with the tables, the way `consumers.replay` does:
a row changed behind the services is reported, named by its table and key. On the way it
checks what the events must agree on among themselves: a contract changes only after it
was created, an agreement is by a party for the version pending, an activation or an
amendment follows every party's agreement, a trigger executes once per contract, and a
pay-as-produced PPA's obligation is the execution's volume at the price of the terms then
in force (half-up to the minor unit; an indexed price re-derived from the clearings
the execution recorded and the market's `market.slot_cleared` events:
`contracts.replay_pricing`), and a community sharing period is exactly the
consumers app's distributions it names (`contracts.replay_sharing`).

An obligation is settled by the market's `settlement.paid` event naming it (appended in
the execution's transaction, or later by a payment or the calendar tick), or at once when
there is nothing to pay (`nothing_to_pay`).

An open obligation's `reason_code` is the one its execution recorded, then the one of
each `contract.obligation_retried` (the tick's retry, when the reason changed), and empty
once paid.

Not in the events, so not compared: the times the services stamp (`created_at`,
`activated_at`, `ended_at`, `agreed_at`, `updated_at`, `settled_at`) and a contract's
`max_attempts`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from contracts import events
from contracts.kinds.community import COMMUNITY_SHARING
from contracts.kinds.shares import PPA_KINDS, PPA_SHAPED
from contracts.models import (
    Agreement,
    Contract,
    ContractExecution,
    ContractParty,
    OrganisationKey,
    SettlementObligation,
)
from contracts.replay_pricing import SLOT_CLEARED, PricingReplay
from contracts.replay_sharing import DISTRIBUTED, SharingReplay
from ledger.canonical import canonical_bytes, format_time
from ledger.replaying import ReplayProblems, log_events, replay_snapshot

# The market's payment event (`market.events.PAID`): contracts may not import the market.
SETTLEMENT_PAID = "settlement.paid"
NOTHING_TO_PAY = "nothing_to_pay"
OBLIGATION = "settlement_obligation:"
Row = dict[str, Any]

CONTRACT_KINDS = (
    events.CREATED,
    events.AGREED,
    events.ACTIVATED,
    events.AMENDMENT_PROPOSED,
    events.AMENDED,
    events.TERMINATION_PROPOSED,
    events.TERMINATED,
    events.EXPIRED,
    events.EXECUTED,
    events.EXECUTION_FAILED,
    events.KEY_REGISTERED,
    events.OBLIGATION_RETRIED,
)
# The account a kind takes from (the contract's `source_account`), by its terms' field.
SOURCE_FIELDS = ("seller_account", "from_account", "account", "charge_account")
TAKES_EFFECT = {
    events.ACTIVATED: Agreement.Action.ACTIVATE,
    events.AMENDED: Agreement.Action.AMEND,
    events.TERMINATED: Agreement.Action.TERMINATE,
}
TABLES = ("contract", "agreement", "execution", "obligation", "contract key")


@dataclass
class ContractsReplayReport(ReplayProblems):
    events: int = 0
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        counted = ", ".join(f"{n} {name}s" for name, n in self.tables.items())
        return f"{self.events} contract events: {counted or 'nothing'} replayed"


def _derived(kind: str, terms: dict[str, Any]) -> Row:
    """What a contract row denormalises from its terms."""
    source = next((terms[name] for name in SOURCE_FIELDS if name in terms), None)
    return {
        "device_id": terms.get("device_id"),
        "source_account": source,
        "share_bp": terms.get("share_bp") if "share_bp" in terms else None,
    }


def _contract_row(d: dict[str, Any]) -> Row:
    return {
        "kind": d["kind"],
        "status": d["status"],
        "version": d["version"],
        "terms": d["terms"],
        "terms_sha256": d["terms_sha256"],
        "start_at": d["start_at"],
        "end_at": d["end_at"],
        "on_failure": d["on_failure"],
        "parties": sorted((p["organisation_id"], p["role"]) for p in d["parties"]),
        "proposal": None,
    } | _derived(d["kind"], d["terms"])


class _State:
    """What the events say each table holds: table name -> key -> fields."""

    def __init__(self, report: ContractsReplayReport) -> None:
        self.report = report
        self.where = ""
        self.sharing = SharingReplay(report.problem)
        self.pricing = PricingReplay(report.problem)
        self.tables: dict[str, dict[Any, Row]] = {name: {} for name in TABLES}
        self.payments: dict[int, Row] = {}
        self.triggers: set[tuple[int, str]] = set()
        self.agreed: dict[tuple[int, int], set[int]] = {}

    def fail(self, text: str) -> None:
        self.report.problem(f"{self.where}: {text}")

    def apply(self, kind: str, event: dict[str, Any]) -> None:
        d = event["data"]
        if kind == SETTLEMENT_PAID:
            self._paid(d)
        elif kind == SLOT_CLEARED:
            self.pricing.slot_cleared(d)
        elif kind == DISTRIBUTED:
            self.sharing.distributed(d)
        elif kind == events.KEY_REGISTERED:
            self.tables["contract key"][d["key_id"]] = {
                "organisation_id": d["organisation_id"],
                "name": d["name"],
                "public_key": d["public_key"],
                "revoked": False,
            }
        elif kind in (events.EXECUTED, events.EXECUTION_FAILED):
            self._executed(kind, d)
        elif kind == events.OBLIGATION_RETRIED:
            self._retried(d)
        else:
            self._contract(kind, d, event["actor"])

    def _contract(self, kind: str, d: dict[str, Any], actor: str) -> None:
        contracts = self.tables["contract"]
        contract_id = d["contract_id"]
        before = contracts.get(contract_id)
        if kind == events.CREATED:
            if before is not None:
                self.fail(f"contract {contract_id} created twice")
            if d["status"] != Contract.Status.DRAFT or d["version"] != 1:
                self.fail(f"contract {contract_id} created as {d['status']} v{d['version']}")
        elif before is None:
            self.fail(f"contract {contract_id} changed before it was created")
            return
        after = _contract_row(d)
        if hashlib.sha256(canonical_bytes(d["terms"])).hexdigest() != d["terms_sha256"]:
            self.fail(f"contract {contract_id}'s terms do not hash to its terms_sha256")
        if before is not None and before["parties"] != after["parties"]:
            self.fail(f"contract {contract_id}'s parties changed")
        if kind in (events.AMENDMENT_PROPOSED, events.TERMINATION_PROPOSED):
            after["proposal"] = d["proposal"]
        elif before is not None and kind in (events.AGREED,):
            after["proposal"] = before["proposal"]
        if "agreement" in d:
            self._agreement(contract_id, before, after, d["agreement"], actor)
        if kind in TAKES_EFFECT and before is not None and "agreement" in d:
            self._took_effect(kind, contract_id, before, after)
        contracts[contract_id] = after

    def _agreement(
        self, contract_id: int, before: Row | None, after: Row, a: dict[str, Any], actor: str
    ) -> None:
        org = a["organisation_id"]
        if before is None:
            return
        pending = (before["version"], Agreement.Action.ACTIVATE.value)
        if before["proposal"]:
            pending = (before["proposal"]["version"], before["proposal"]["action"])
        if (a["version"], a["action"]) != pending:
            self.fail(f"contract {contract_id}: {org} agreed to {a['action']} v{a['version']}")
        if org not in {p for p, _role in before["parties"]}:
            self.fail(f"contract {contract_id}: organisation {org} agreed but is no party")
        key = (contract_id, a["version"], org)
        if key in self.tables["agreement"]:
            self.fail(f"contract {contract_id}: organisation {org} agreed to v{a['version']} twice")
        self.agreed.setdefault((contract_id, a["version"]), set()).add(org)
        self.tables["agreement"][key] = {
            "action": a["action"],
            "document_sha256": a["document_sha256"],
            "key_id": a["key_id"],
            "signature": a["signature"] or "",
            "agreed_by": actor,
        }

    def _took_effect(self, kind: str, contract_id: int, before: Row, after: Row) -> None:
        action = TAKES_EFFECT[kind]
        version = before["proposal"]["version"] if before["proposal"] else before["version"]
        agreed = self.agreed.get((contract_id, version), set())
        if agreed != {p for p, _role in before["parties"]}:
            self.fail(f"contract {contract_id} took effect ({action}) without every party")
        if kind == events.AMENDED and (
            after["version"] != version or after["terms"] != before["proposal"]["terms"]
        ):
            self.fail(f"contract {contract_id}'s amendment is not the proposal agreed")

    def _executed(self, kind: str, d: dict[str, Any]) -> None:
        execution_id, contract_id = d["execution_id"], d["contract_id"]
        contract = self.tables["contract"].get(contract_id)
        if contract is None:
            self.fail(f"execution {execution_id} of contract {contract_id}, never created")
        executions = self.tables["execution"]
        earlier = executions.get(execution_id)
        if earlier is not None and earlier["status"] == ContractExecution.Status.APPLIED:
            self.fail(f"execution {execution_id} ran again after it applied")
        if earlier is not None and (earlier["contract_id"], earlier["trigger"]) != (
            contract_id,
            d["trigger"],
        ):
            self.fail(f"execution {execution_id} changed its contract or trigger")
        if earlier is None:
            if (contract_id, d["trigger"]) in self.triggers:
                self.fail(f"{d['trigger']} executed twice for contract {contract_id}")
            self.triggers.add((contract_id, d["trigger"]))
        status = d["status"]
        if (status == ContractExecution.Status.APPLIED) != (kind == events.EXECUTED):
            self.fail(f"execution {execution_id}: {kind} with status {status}")
        executions[execution_id] = {
            "contract_id": contract_id,
            "trigger": d["trigger"],
            "version": d["version"],
            "status": status,
            "attempts": d["attempts"],
            "reason_code": d["reason_code"] or "",
            "reason_detail": d.get("reason_detail") or "",
            "result": d["result"],
        }
        if contract is not None and contract["kind"] == COMMUNITY_SHARING and d["result"]:
            self.sharing.executed(self.where, execution_id, contract["terms"], d["result"])
        if contract is not None and contract["kind"] == PPA_SHAPED and d["result"]:
            self.pricing.shape(self.where, contract["terms"]["shape"], d["result"])
        owed = (d["result"] or {}).get("obligation")
        if owed is not None and "obligation_id" in owed:
            self._obligation(contract, contract_id, execution_id, owed, d["result"])

    def _obligation(
        self,
        contract: Row | None,
        contract_id: int,
        execution_id: int,
        owed: dict[str, Any],
        result: dict[str, Any],
    ) -> None:
        obligation_id = owed["obligation_id"]
        if contract is not None and contract["kind"] in PPA_KINDS:
            where = f"{self.where}: obligation {obligation_id}"
            amount, price = self.pricing.expected(where, contract["terms"], result)
            if sum(p[2] for p in result["periods"]) != owed["volume_wh"]:
                self.fail(f"obligation {obligation_id}: volume is not the periods' Wh")
            roles = {role: org for org, role in contract["parties"]}
            expected = (amount, price, roles.get("buyer"), roles.get("seller"))
            got = (owed["amount_minor"], owed["price_per_mwh_minor"])
            if expected != (*got, owed["payer_id"], owed["payee_id"]):
                self.fail(
                    f"obligation {obligation_id}: {owed['volume_wh']} Wh at the terms' price"
                    f" {price} is {amount} from buyer {roles.get('buyer')} to seller"
                    f" {roles.get('seller')}, the execution says {got[0]} from"
                    f" {owed['payer_id']} to {owed['payee_id']}"
                )
        if obligation_id in self.tables["obligation"]:
            self.fail(f"obligation {obligation_id} created twice")
        self.tables["obligation"][obligation_id] = {
            "contract_id": contract_id,
            "execution_id": execution_id,
            "payer_id": owed["payer_id"],
            "payee_id": owed["payee_id"],
            "amount_minor": owed["amount_minor"],
            "currency": owed["currency"],
            "volume_wh": owed["volume_wh"],
            "status": owed["status"],
            "reference": "",
            "reason_code": owed.get("reason_code") or "",
        }

    def _retried(self, d: dict[str, Any]) -> None:
        obligation_id = d["obligation_id"]
        row = self.tables["obligation"].get(obligation_id)
        if row is None:
            self.fail(f"obligation {obligation_id} retried, but no execution created it")
            return
        if row["contract_id"] != d["contract_id"] or row["execution_id"] != d["execution_id"]:
            self.fail(f"obligation {obligation_id} retried under another contract or execution")
        if obligation_id in self.payments or row["status"] != SettlementObligation.Status.OPEN:
            self.fail(f"obligation {obligation_id} retried after it was settled")
        if (d["previous_reason_code"] or "") != row["reason_code"]:
            self.fail(
                f"obligation {obligation_id} retried from reason {d['previous_reason_code']!r},"
                f" the log had {row['reason_code']!r}"
            )
        row["reason_code"] = d["reason_code"] or ""

    def _paid(self, d: dict[str, Any]) -> None:
        paid_for = d.get("paid_for") or ""
        if not paid_for.startswith(OBLIGATION):
            return
        obligation_id = int(paid_for.removeprefix(OBLIGATION))
        if obligation_id in self.payments:
            self.fail(f"obligation {obligation_id} paid twice")
        self.payments[obligation_id] = {
            "reference": f"journal_entry:{d['journal'][0]['journal_entry_id']}",
            "amount_minor": d["amount_minor"],
            "currency": d["currency"],
            "payer_id": d["payer_organisation_id"],
            "payee_id": d["payee_organisation_id"],
        }

    def settle(self) -> None:
        """Each obligation's settlement state: its payment, or nothing to pay."""
        obligations = self.tables["obligation"]
        for obligation_id, paid in sorted(self.payments.items()):
            row = obligations.get(obligation_id)
            self.where = f"payment of obligation {obligation_id}"
            if row is None:
                self.fail("no execution created it")
                continue
            owed = {
                name: row[name] for name in ("amount_minor", "currency", "payer_id", "payee_id")
            }
            if owed != {name: paid[name] for name in owed}:
                self.fail(f"the payment {paid} is not what is owed {owed}")
            row["status"] = SettlementObligation.Status.SETTLED.value
            row["reference"] = paid["reference"]
            row["reason_code"] = ""
        for obligation_id, row in sorted(obligations.items()):
            if (
                obligation_id in self.payments
                or row["status"] != SettlementObligation.Status.SETTLED
            ):
                continue
            if row["amount_minor"] == 0 or row["payer_id"] == row["payee_id"]:
                row["reference"] = NOTHING_TO_PAY
            else:
                self.where = f"obligation {obligation_id}"
                self.fail("settled at its execution, but no payment names it")


def _table_rows() -> dict[str, Iterator[tuple[Any, Row]]]:
    """The same fields as `_State`, read from the tables row by row (primary key order)."""
    parties: dict[int, list[tuple[int, str]]] = {}
    for contract_id, org, role in ContractParty.objects.values_list(
        "contract_id", "organisation_id", "role"
    ):
        parties.setdefault(contract_id, []).append((org, role))
    contracts = Contract.objects.select_related("source_account").order_by("pk")
    return {
        "contract": (
            (
                c.pk,
                {
                    "kind": c.kind,
                    "status": c.status,
                    "version": c.version,
                    "terms": c.terms,
                    "terms_sha256": c.terms_sha256,
                    "start_at": format_time(c.start_at),
                    "end_at": format_time(c.end_at),
                    "on_failure": c.on_failure,
                    "parties": sorted(parties.get(c.pk, [])),
                    "proposal": c.proposal or None,
                    "device_id": c.device_id,
                    "source_account": c.source_account.number if c.source_account_id else None,
                    "share_bp": c.share_bp,
                },
            )
            for c in contracts.iterator(chunk_size=2000)
        ),
        "agreement": (
            (
                (a.contract_id, a.version, a.organisation_id),
                {
                    "action": a.action,
                    "document_sha256": a.document_sha256,
                    "key_id": a.key_id,
                    "signature": a.signature,
                    "agreed_by": f"user:{a.agreed_by_id}",
                },
            )
            for a in Agreement.objects.order_by("pk").iterator(chunk_size=2000)
        ),
        "execution": (
            (
                e.pk,
                {
                    "contract_id": e.contract_id,
                    "trigger": e.trigger,
                    "version": e.version,
                    "status": e.status,
                    "attempts": e.attempts,
                    "reason_code": e.reason_code,
                    "reason_detail": e.reason_detail,
                    "result": e.result,
                },
            )
            for e in ContractExecution.objects.order_by("pk").iterator(chunk_size=2000)
        ),
        "obligation": (
            (
                o.pk,
                {
                    "contract_id": o.contract_id,
                    "execution_id": o.execution_id,
                    "payer_id": o.payer_id,
                    "payee_id": o.payee_id,
                    "amount_minor": o.amount_minor,
                    "currency": o.currency,
                    "volume_wh": o.volume_wh,
                    "status": o.status,
                    "reference": o.reference,
                    "reason_code": o.reason_code,
                },
            )
            for o in SettlementObligation.objects.order_by("pk").iterator(chunk_size=2000)
        ),
        "contract key": (
            (
                k.pk,
                {
                    "organisation_id": k.organisation_id,
                    "name": k.name,
                    "public_key": k.public_key,
                    "revoked": k.revoked_at is not None,
                },
            )
            for k in OrganisationKey.objects.order_by("pk")
        ),
    }


def _differences(name: str, key: Any, ledger: Row | None, table: Row | None) -> str:
    if ledger is None or table is None:
        return f"{name} {key}: ledger {ledger}, table {table}"
    changed = sorted(f for f in set(ledger) | set(table) if ledger.get(f) != table.get(f))
    said = "; ".join(f"{f} ledger {ledger.get(f)!r}, table {table.get(f)!r}" for f in changed)
    return f"{name} {key}: {said}"


def replay_contracts() -> ContractsReplayReport:
    """Replay the contract events (and the payments of obligations); compare every
    replayed row with its table."""
    report = ContractsReplayReport()
    state = _State(report)
    with replay_snapshot():
        others = (SETTLEMENT_PAID, DISTRIBUTED, SLOT_CLEARED)
        for where, event in log_events((*CONTRACT_KINDS, *others)):
            kind = event["type"]
            state.where = f"{where} ({kind})"
            if kind not in others:
                report.events += 1
            try:
                state.apply(kind, event)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                state.fail(f"malformed event data: {exc!r}")
        state.settle()
        state.sharing.settle()
        state.pricing.settle()
        for name, rows in _table_rows().items():
            replayed = state.tables[name]
            report.tables[name] = len(replayed)
            seen = set()
            for key, row in rows:
                seen.add(key)
                if replayed.get(key) != row:
                    report.problem(_differences(name, key, replayed.get(key), row))
            for key in sorted(set(replayed) - seen):
                report.problem(_differences(name, key, replayed[key], None))
    return report
