"""Replay of community sharing executions against the consumers app's distributions.

A `community_sharing` execution moves no certificate itself: the consumers app's
`community.certificates_distributed` event in the same transaction does (and the
consumers and certificates replays follow its rows and units). What the contracts replay
re-derives here is that each applied period's `result` is exactly those distributions:
every hour it lists is a distribution of the contract's community in that event, with
the same Wh per member, claimed by no other execution, paid only to the members the
terms pinned, conserving Wh per hour (members' Wh = distributed, distributed + kept =
issued) and adding up to the result's totals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The consumers app's event (`consumers.events.COMMUNITY_CERTIFICATES_DISTRIBUTED`):
# contracts may not import consumers.
DISTRIBUTED = "community.certificates_distributed"
HOUR_FIELDS = ("hour", "issued_wh", "distributed_wh", "kept_wh", "members")


class SharingReplay:
    """Collects distributions and the executions that claim them; checks at the end."""

    def __init__(self, fail: Callable[[str], None]) -> None:
        self.fail = fail
        self.distributions: dict[int, dict[str, Any]] = {}
        self.claims: dict[int, tuple[str, int]] = {}
        self.checks: list[tuple[str, int, dict[str, Any], dict[str, Any]]] = []

    def distributed(self, d: dict[str, Any]) -> None:
        for row in d["hours"]:
            self.distributions[row["distribution_id"]] = {
                "community_id": d["community_id"],
                **{name: row[name] for name in HOUR_FIELDS},
            }

    def executed(self, where: str, execution_id: int, terms: dict[str, Any], result: dict) -> None:
        """An applied community sharing period: its own sums now, its hours at the end."""
        hours = result["hours"]
        totals = {name: sum(row[name] for row in hours) for name in HOUR_FIELDS[1:4]}
        said = {name: result[name] for name in totals}
        if totals != said or result["volume_wh"] != result["distributed_wh"]:
            self.fail(
                f"{where}: execution {execution_id}: totals {said} are not its hours' {totals}"
            )
        pinned = {str(member["member_id"]) for member in terms["members"]}
        for row in hours:
            if sum(row["members"].values()) != row["distributed_wh"] or (
                row["distributed_wh"] + row["kept_wh"] != row["issued_wh"]
            ):
                self.fail(f"{where}: execution {execution_id}: hour {row['hour']} does not add up")
            strangers = sorted(set(row["members"]) - pinned)
            if strangers:
                self.fail(f"{where}: execution {execution_id}: members {strangers} never agreed")
            earlier = self.claims.get(row["distribution_id"])
            if earlier is not None:
                self.fail(
                    f"{where}: execution {execution_id}: distribution {row['distribution_id']} was"
                    f" claimed by execution {earlier[1]} already"
                )
            self.claims[row["distribution_id"]] = (where, execution_id)
            self.checks.append((where, execution_id, terms, row))

    def settle(self) -> None:
        """Every hour an execution claims is that distribution, as its event says."""
        for where, execution_id, terms, row in self.checks:
            found = self.distributions.get(row["distribution_id"])
            expected = {"community_id": terms["community_id"]} | {
                name: row[name] for name in HOUR_FIELDS
            }
            if found != expected:
                self.fail(
                    f"{where}: execution {execution_id}'s hour {row['hour']} is"
                    f" {expected}, the distribution's event says {found}"
                )
