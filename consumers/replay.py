"""Rebuild the consumers app's state from its ledger events alone and compare it with the
tables: households, sites and their status, site meters, consents in force or revoked,
communities with their key, members with their periods and shares, shared devices, and
certificate distributions.

Registered as a `certificates.replay.REPLAY_EXTENSIONS` entry, so `manage.py
replay_ledger` runs it after the certificates' replay (which follows the units a
distribution moved). A difference is evidence: a row changed outside the services, or an
event is wrong. Personal details (a household's name and address) are not in the ledger
and not compared.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from consumers import events
from consumers.models import (
    Community,
    CommunityDevice,
    CommunityDistribution,
    CommunityMember,
    Consent,
    Household,
    Site,
    SiteMeter,
)
from ledger.canonical import format_time
from ledger.replaying import ReplayProblems, events_of_kinds, replay_snapshot

Row = dict[str, Any]


@dataclass
class ConsumersReplayReport(ReplayProblems):
    events: int = 0
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        counted = ", ".join(f"{n} {name}" for name, n in self.tables.items())
        return f"{self.events} consumers events: {counted or 'nothing'} replayed"


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else format_time(value)


class _State:
    """What the events say each table holds: table name -> primary key -> fields."""

    def __init__(self, report: ConsumersReplayReport) -> None:
        self.report = report
        self.where = ""
        self.tables: dict[str, dict[Any, Row]] = {
            name: {}
            for name in (
                "household",
                "site",
                "site meter",
                "consent",
                "community",
                "community member",
                "community device",
                "community distribution",
            )
        }

    def fail(self, text: str) -> None:
        self.report.problem(f"{self.where}: {text}")

    def row(self, table: str, pk: Any) -> Row | None:
        found = self.tables[table].get(pk)
        if found is None:
            self.fail(f"{table} {pk} changed before it was created")
        return found

    def apply(self, kind: str, d: dict[str, Any]) -> None:
        t = self.tables
        if kind == events.HOUSEHOLD_REGISTERED:
            t["household"][d["household_id"]] = {"organisation_id": d["organisation_id"]}
        elif kind == events.SITE_REGISTERED:
            t["site"][d["site_id"]] = {
                "household_id": d["household_id"],
                "metering_point_id": d["metering_point_id"],
                "grid_area_id": d["grid_area_id"],
                "status": Site.Status.PENDING,
            }
        elif kind in (events.SITE_CONFIRMED, events.SITE_REJECTED):
            site = self.row("site", d["site_id"])
            if site is not None:
                confirmed = kind == events.SITE_CONFIRMED
                site["status"] = Site.Status.CONFIRMED if confirmed else Site.Status.REJECTED
        elif kind == events.SITE_METER_LINKED:
            t["site meter"][d["site_meter_id"]] = {
                "site_id": d["site_id"],
                "meter_id": d["meter_id"],
                "role": d["role"],
            }
        elif kind == events.CONSENT_GRANTED:
            t["consent"][d["consent_id"]] = {
                "household_id": d["household_id"],
                "site_id": d["site_id"],
                "grantee_id": d["grantee_id"],
                "purpose": d["purpose"],
                "resolution": d["resolution"],
                "meters": sorted(d["site_meter_ids"]),
                "valid_from": d["valid_from"],
                "valid_to": d["valid_to"],
                "revoked_at": None,
            }
        elif kind == events.CONSENT_REVOKED:
            consent = self.row("consent", d["consent_id"])
            if consent is not None:
                if consent["revoked_at"] is not None:
                    self.fail(f"consent {d['consent_id']} revoked twice")
                consent["revoked_at"] = d["revoked_at"]
        elif kind == events.COMMUNITY_CREATED:
            t["community"][d["community_id"]] = {
                "organisation_id": d["organisation_id"],
                "grid_area_id": d["grid_area_id"],
                "key_kind": d["key_kind"],
                "internal_price_minor_per_kwh": d["internal_price_minor_per_kwh"],
                "currency": d["currency"],
            }
        elif kind == events.COMMUNITY_MEMBER_JOINED:
            t["community member"][d["member_id"]] = {
                "community_id": d["community_id"],
                "organisation_id": d["organisation_id"],
                "site_id": d["site_id"],
                "consumption_meter_id": d["consumption_meter_id"],
                "account_id": d["account_id"],
                "joined_at": d["joined_at"],
                "left_at": None,
                "share": None,
            }
        elif kind == events.COMMUNITY_MEMBER_LEFT:
            member = self.row("community member", d["member_id"])
            if member is not None:
                member["left_at"] = d["left_at"]
        elif kind == events.COMMUNITY_KEY_SET:
            community = self.row("community", d["community_id"])
            if community is not None:
                community["key_kind"] = d["key_kind"]
            for member_id, share in d["shares"].items():
                member = self.row("community member", int(member_id))
                if member is not None:
                    member["share"] = share
        elif kind == events.COMMUNITY_DEVICE_ADDED:
            t["community device"][d["device_id"]] = {"community_id": d["community_id"]}
        elif kind == events.COMMUNITY_CERTIFICATES_DISTRIBUTED:
            for hour in d["hours"]:
                if hour["distributed_wh"] + hour["kept_wh"] != hour["issued_wh"]:
                    self.fail(f"distribution {hour['distribution_id']} does not add up")
                t["community distribution"][hour["distribution_id"]] = {
                    "community_id": d["community_id"],
                    "hour": hour["hour"],
                    "issued_wh": hour["issued_wh"],
                    "distributed_wh": hour["distributed_wh"],
                    "kept_wh": hour["kept_wh"],
                    "member_wh": hour["members"],
                }


def _table_rows() -> dict[str, dict[Any, Row]]:
    """The same fields as `_State`, read from the tables."""
    consent_meters: dict[int, list[int]] = {}
    for consent_id, meter_id in Consent.meters.through.objects.values_list(
        "consent_id", "sitemeter_id"
    ):
        consent_meters.setdefault(consent_id, []).append(meter_id)
    return {
        "household": {
            h.pk: {"organisation_id": h.organisation_id} for h in Household.objects.all()
        },
        "site": {
            s.pk: {
                "household_id": s.household_id,
                "metering_point_id": s.metering_point_id,
                "grid_area_id": s.grid_area_id,
                "status": s.status,
            }
            for s in Site.objects.all()
        },
        "site meter": {
            m.pk: {"site_id": m.site_id, "meter_id": m.meter_id, "role": m.role}
            for m in SiteMeter.objects.all()
        },
        "consent": {
            c.pk: {
                "household_id": c.household_id,
                "site_id": c.site_id,
                "grantee_id": c.grantee_id,
                "purpose": c.purpose,
                "resolution": c.resolution,
                "meters": sorted(consent_meters.get(c.pk, [])),
                "valid_from": _time(c.valid_from),
                "valid_to": _time(c.valid_to),
                "revoked_at": _time(c.revoked_at),
            }
            for c in Consent.objects.all()
        },
        "community": {
            c.pk: {
                "organisation_id": c.organisation_id,
                "grid_area_id": c.grid_area_id,
                "key_kind": c.key_kind,
                "internal_price_minor_per_kwh": c.internal_price_minor_per_kwh,
                "currency": c.currency,
            }
            for c in Community.objects.all()
        },
        "community member": {
            m.pk: {
                "community_id": m.community_id,
                "organisation_id": m.organisation_id,
                "site_id": m.site_id,
                "consumption_meter_id": m.consumption_meter_id,
                "account_id": m.account_id,
                "joined_at": _time(m.joined_at),
                "left_at": _time(m.left_at),
                "share": (
                    None
                    if m.share_denominator is None
                    else f"{m.share_numerator}/{m.share_denominator}"
                ),
            }
            for m in CommunityMember.objects.all()
        },
        "community device": {
            d.device_id: {"community_id": d.community_id} for d in CommunityDevice.objects.all()
        },
        "community distribution": {
            d.pk: {
                "community_id": d.community_id,
                "hour": _time(d.hour),
                "issued_wh": d.issued_wh,
                "distributed_wh": d.distributed_wh,
                "kept_wh": d.kept_wh,
                "member_wh": d.member_wh,
            }
            for d in CommunityDistribution.objects.all()
        },
    }


def replay_consumers() -> ConsumersReplayReport:
    """Replay the consumers events and compare every replayed row with its table."""
    report = ConsumersReplayReport()
    state = _State(report)
    with replay_snapshot():
        for where, kind, data in events_of_kinds(events.KINDS):
            state.where = f"{where} ({kind})"
            report.events += 1
            try:
                state.apply(kind, data)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                state.fail(f"malformed event data: {exc!r}")
        for name, rows in _table_rows().items():
            replayed = state.tables[name]
            report.tables[name] = len(replayed)
            for pk in sorted(set(rows) | set(replayed)):
                if rows.get(pk) != replayed.get(pk):
                    report.problem(f"{name} {pk}: ledger {replayed.get(pk)}, table {rows.get(pk)}")
    return report
