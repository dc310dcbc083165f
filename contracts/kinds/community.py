"""Community sharing: an energy community's allocation key as a contract its members (and
its operator) agreed to.

Terms name the community and the period granularity (`day` by default, or `hour`); the
validated terms pin what the parties agree to: the key kind and every current member
(member id, organisation, receiving account and, for a static key, its share). Each
period (trigger `day:YYYY-MM-DD` or `hour:YYYY-MM-DDTHH:00`) the consumers app's
distribution moves the shared devices' certificates of that period's hours from the
operator's accounts to the members' by the key; what the key leaves over stays with the
operator. The contract never splits certificates itself: it calls the consumers app
through the `contracts.community_sharing` hook (layer-6 apps do not import each other).

A period whose members or key differ from the agreed ones is refused
(`membership_changed`, `allocation_key_changed`); the parties draft a new contract for
the new membership (an amendment keeps the parties). A period with nothing to distribute
is refused with `no_certificates`.
"""

from __future__ import annotations

import datetime as dt
import re
from fractions import Fraction
from typing import Any, Protocol

from contracts.errors import (
    AllocationKeyChanged,
    InvalidTerms,
    MembershipChanged,
    NoCertificates,
    TermsUnmet,
)
from contracts.kinds.base import Plan, TermsReader, Validated
from contracts.models import Contract, ContractExecution
from registry.errors import Conflict
from registry.hooks import Hook

COMMUNITY_SHARING = "community_sharing"
GRANULARITIES = {"day": dt.timedelta(days=1), "hour": dt.timedelta(hours=1)}
TRIGGER_PREFIX = {"day": "day", "hour": "hour"}
MAX_ID = 2**53


class SharingProvider(Protocol):
    """What the consumers app registers in `COMMUNITY_SHARING_PROVIDERS` (one object)."""

    def snapshot(
        self, *, community_id: int, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> dict[str, Any] | None:
        """None for no such community; else `operator_organisation_id`, `key_kind` and
        `members`: the current members (or those of any part of [start, end)), in member
        order, each `member_id`, `organisation_id`, `account`, `share` ("n/d" or None)
        and `whole` (a member for the whole of [start, end); True without a period)."""

    def preview(self, *, community_id: int, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        """Reads only: `held_wh` (the shared devices' certificates of [start, end) the
        operator holds) and `already_distributed` (hours)."""

    def distribute(
        self, *, community_id: int, start: dt.datetime, end: dt.datetime
    ) -> dict[str, Any]:
        """Distribute [start, end) now, inside the caller's transaction (the consumers
        app's own service and event); its report, with `distribution_ids`."""


# The consumers app registers its provider here by name from its ready().
COMMUNITY_SHARING_PROVIDERS = Hook("contracts.community_sharing")


def provider() -> SharingProvider:
    return COMMUNITY_SHARING_PROVIDERS.one()


def _pinned(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {name: member[name] for name in ("member_id", "organisation_id", "account", "share")}
        for member in snapshot["members"]
    ]


def validate(terms: Any) -> Validated:
    read = TermsReader(terms, {"community_id", "granularity", "key_kind", "members"})
    community_id = read.integer("community_id", 1, MAX_ID)
    granularity = terms.get("granularity", "day")
    if granularity not in GRANULARITIES:
        raise InvalidTerms(fields={"granularity": sorted(GRANULARITIES)})
    snapshot = provider().snapshot(community_id=community_id)
    if snapshot is None:
        raise TermsUnmet(fields={"community_id": ["no such community"]})
    members = _pinned(snapshot)
    if not members:
        raise TermsUnmet(fields={"community_id": ["the community has no current members"]})
    if snapshot["key_kind"] == "static":
        shares = [m["share"] for m in members]
        if None in shares or sum((Fraction(s) for s in shares), Fraction(0)) != 1:
            raise TermsUnmet(
                "The community's static key must give its current members shares adding up"
                " to 100%: set the key first.",
                fields={"community_id": ["key shares do not add up to 100%"]},
                shares={str(m["member_id"]): m["share"] for m in members},
            )
    # Given back (an amendment, a re-validation), the pinned fields must still be true.
    for name, now in (("key_kind", snapshot["key_kind"]), ("members", members)):
        if name in terms and terms[name] != now:
            raise TermsUnmet(fields={name: ["not the community's current members and key"]})
    clean = {
        "community_id": community_id,
        "granularity": granularity,
        "key_kind": snapshot["key_kind"],
        "members": members,
    }
    operator = snapshot["operator_organisation_id"]
    parties = [(operator, "operator")]
    for member in members:
        if member["organisation_id"] not in {org for org, _role in parties}:
            parties.append((member["organisation_id"], "member"))
    return Validated(terms=clean, parties=parties)


def trigger_for(contract: Contract, start: dt.datetime) -> str:
    if contract.terms["granularity"] == "hour":
        return f"hour:{start.astimezone(dt.UTC):%Y-%m-%dT%H:00}"
    return f"day:{start.astimezone(dt.UTC):%Y-%m-%d}"


def period_bounds(contract: Contract, prefix: str, value: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a trigger of this contract's granularity; InvalidTerms otherwise."""
    granularity = contract.terms["granularity"]
    day = r"[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}"  # years 1000-8999, ASCII digits
    pattern = day if granularity == "day" else rf"{day}T[0-9]{{2}}:00"
    if prefix != TRIGGER_PREFIX[granularity] or not re.fullmatch(pattern, value or ""):
        raise InvalidTerms(
            f"A period of this contract is a {granularity}.",
            fields={"period": ["YYYY-MM-DD" if granularity == "day" else "YYYY-MM-DDTHH:00"]},
        )
    try:
        start = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    except ValueError:
        raise InvalidTerms(fields={"period": ["a real date and hour"]}) from None
    return start, start + GRANULARITIES[granularity]


def first_period_start(contract: Contract) -> dt.datetime:
    """The start of the contract's first whole period."""
    step = GRANULARITIES[contract.terms["granularity"]]
    begin = contract.start_at.astimezone(dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    floored = epoch + (begin - epoch) // step * step
    return floored if floored == begin else floored + step


def next_trigger(contract: Contract) -> str:
    """The period after the contract's latest executed one (whatever its outcome), or
    its first whole period."""
    latest = (
        ContractExecution.objects.filter(contract=contract)
        .order_by("-trigger")
        .values_list("trigger", flat=True)
        .first()
    )
    if latest is None:
        return trigger_for(contract, first_period_start(contract))
    prefix, _, value = latest.partition(":")
    _start, end = period_bounds(contract, prefix, value)
    return trigger_for(contract, end)


def _membership_problem(contract: Contract, period: dict[str, Any]) -> Conflict | None:
    agreed = contract.terms["members"]
    now = _pinned(period)
    if period["key_kind"] != contract.terms["key_kind"]:
        return AllocationKeyChanged(agreed=contract.terms["key_kind"], now=period["key_kind"])
    agreed_ids = [m["member_id"] for m in agreed]
    if [m["member_id"] for m in now] != agreed_ids or not all(
        m["whole"] for m in period["members"]
    ):
        return MembershipChanged(
            agreed=agreed_ids,
            now=[m["member_id"] for m in now],
            partial=[m["member_id"] for m in period["members"] if not m["whole"]],
        )
    changed = [a["member_id"] for a, n in zip(agreed, now, strict=True) if a != n]
    if not changed:
        return None
    if all({**a, "share": None} == {**n, "share": None} for a, n in zip(agreed, now, strict=True)):
        return AllocationKeyChanged(members=changed)
    return MembershipChanged(members=changed)


def plan_period(contract: Contract, trigger: str) -> Plan:
    """What a period does: the membership check, and what the operator holds for it. The
    split itself is the consumers app's, at execution (`Plan.community`)."""
    prefix, _, value = trigger.partition(":")
    start, end = period_bounds(contract, prefix, value)
    community_id = contract.terms["community_id"]
    share = provider()
    summary: dict[str, Any] = {
        "kind": contract.kind,
        "trigger": trigger,
        "version": contract.version,
        "community_id": community_id,
        "start": start,
        "end": end,
        "key_kind": contract.terms["key_kind"],
    }
    plan = Plan(trigger=trigger, summary=summary)
    period = share.snapshot(community_id=community_id, start=start, end=end)
    if period is None:
        plan.refusal = MembershipChanged("The community no longer exists.")
        return plan
    plan.refusal = _membership_problem(contract, period)
    preview = share.preview(community_id=community_id, start=start, end=end)
    summary["held_wh"] = preview["held_wh"]
    summary["already_distributed"] = preview["already_distributed"]
    plan.community = (community_id, start, end)
    return plan


def apply(plan: Plan) -> dict[str, Any]:
    """Distribute the planned period through the consumers app; refuse when nothing moved
    (the savepoint then undoes whatever the refusal's path wrote)."""
    community_id, start, end = plan.community
    report = provider().distribute(community_id=community_id, start=start, end=end)
    if not report["distribution_ids"]:
        raise NoCertificates(
            community_id=community_id,
            skipped=[[row["hour"], row["reason"]] for row in report["skipped"]][:24],
        )
    plan.subjects += [("community", community_id)]
    plan.subjects += [("community_distribution", pk) for pk in report["distribution_ids"]]
    result = dict(plan.summary)
    result.pop("held_wh", None)
    result.pop("already_distributed", None)
    result |= {
        "issued_wh": report["issued_wh"],
        "distributed_wh": report["distributed_wh"],
        "kept_wh": report["kept_wh"],
        "volume_wh": report["distributed_wh"],
        "members": report["members"],
        "hours": [
            {"distribution_id": pk} | row
            for pk, row in zip(report["distribution_ids"], report["hours"], strict=True)
        ],
        "skipped": [[row["hour"], row["reason"]] for row in report["skipped"]],
    }
    return result
