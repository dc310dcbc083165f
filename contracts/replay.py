"""Replay of storage balancing from the ledger.

- What the certificates replay reads from contract events: a storage balancing day's unit
  changes (its charge cancelled into the battery, its discharge issued as storage
  certificates), carried in `contract.executed`'s `result.units`
  (`certificates.services.storing`): `STORAGE_UNIT_EVENTS`, registered in
  `certificates.replay_unit_event_sources`.
- `replay_storage` (a `certificates.replay_extensions` entry, so `manage.py replay_ledger`
  runs it): each battery's state of charge re-derived from its days in log order (each day
  starts where the previous one ended, and its hours add up), compared with the
  `StorageState` table and with the open layers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Sum

from contracts.events import EXECUTED
from contracts.models import StorageLayer, StorageState
from ledger.replaying import ReplayProblems, events_of_kinds, replay_snapshot


def storage_unit_changes(kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The "store" and "issue" changes of an execution (none for other kinds)."""
    return list((data.get("result") or {}).get("units") or [])


STORAGE_UNIT_EVENTS = ((EXECUTED,), storage_unit_changes)


@dataclass
class StorageReplayReport(ReplayProblems):
    days: int = 0
    batteries: int = 0

    @property
    def summary(self) -> str:
        return f"{self.days} storage days: {self.batteries} batteries' state of charge replayed"


def _day_end(trigger: str) -> dt.datetime:
    day = dt.date.fromisoformat(trigger.partition(":")[2])
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)


def replay_storage() -> StorageReplayReport:
    """Re-derive every battery's state of charge from its applied days; compare."""
    report = StorageReplayReport()
    batteries: dict[int, tuple[int, dt.datetime]] = {}
    totals: dict[int, tuple[int, int]] = {}
    with replay_snapshot():
        for where, _kind, data in events_of_kinds([EXECUTED]):
            trigger = data.get("trigger") or ""
            if not trigger.startswith("day:"):
                continue
            result = data["result"]
            device_id = result["device_id"]
            report.days += 1
            soc, _through = batteries.get(device_id, (0, None))
            if result["soc_start_wh"] != soc:
                report.problem(
                    f"{where}: battery {device_id} starts {trigger} at {result['soc_start_wh']}"
                    f" Wh, the previous day ended at {soc} Wh"
                )
            moved = result["stored_wh"] - result["discharged_wh"]
            if result["soc_start_wh"] + moved != result["soc_end_wh"]:
                report.problem(f"{where}: battery {device_id}'s {trigger} does not add up")
            # Over the battery's life: certified <= cancelled x efficiency (losses never
            # certified); a day may certify what earlier days stored.
            certified, stored_ppm = totals.get(device_id, (0, 0))
            certified += result["certified_wh"]
            stored_ppm += result["cancelled_wh"] * result["efficiency_ppm"]
            totals[device_id] = (certified, stored_ppm)
            if certified * 10**6 > stored_ppm:
                report.problem(f"{where}: battery {device_id} certified more than it stored")
            batteries[device_id] = (result["soc_end_wh"], _day_end(trigger))
        states = {
            s.device_id: s
            for s in StorageState.objects.filter(through__isnull=False).order_by("device_id")
        }
        layers = dict(
            StorageLayer.objects.values_list("device_id")
            .annotate(left=Sum("remaining_wh"))
            .values_list("device_id", "left")
        )
    for device_id in sorted(set(batteries) | set(states)):
        state = states.get(device_id)
        replayed = batteries.get(device_id)
        table = None if state is None else (state.soc_wh, state.through)
        if replayed != table:
            report.problem(f"battery {device_id}: ledger says {replayed}, table says {table}")
        if state is not None and layers.get(device_id, 0) != state.soc_wh:
            report.problem(
                f"battery {device_id}: layers hold {layers.get(device_id, 0)} Wh,"
                f" the state of charge is {state.soc_wh} Wh"
            )
    report.batteries = len(batteries)
    return report
