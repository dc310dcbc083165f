"""The simulated home battery: its meters' data, its storage balancing contract and the
contracts app's daily run of it.

The battery (`Spec.battery_wh`) charges from its prosumer's PV surplus and discharges
into the household's deficit (`profiles.battery_day`). Its storage balancing contract
(docs/contracts.md) is drafted and agreed over HTTP by the prosumer; each whole UTC day,
once its readings are in, the contracts app's calendar tick runs it: the PV certificates
of the charge hours left in the prosumer's account are cancelled into the battery, the
discharge is issued as storage certificates with their origin. The trading agent reads
the battery's intraday charge through the `market.battery_charge_lookups` hook: that
state of charge plus the battery's readings since (contracts.selectors).

The market may not import the contracts app (they are sibling layers), so the tick is run
as `manage.py runregistry`'s scheduler runs it: the Celery beat entry's task, by name.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from market.simulation import profiles
from market.simulation.clock import Api
from market.simulation.community import Member

DAY = dt.timedelta(days=1)
TICK = "contracts-calendar-tick"


def site_wh(seed: int, member: Member, profile: str, start: dt.datetime, minutes: int) -> int:
    """The PV or load Wh of the member's site meter in [start, start + minutes)."""
    slug = member.spec.slug.upper()
    if profile == "pv":
        return profiles.pv_wh(
            seed=seed,
            name=f"SIM-PV-{slug}",
            capacity_w=member.spec.pv_w,
            start=start,
            minutes=minutes,
        )
    return profiles.load_wh(
        seed=seed,
        name=f"SIM-LOAD-{slug}",
        base_w=member.spec.base_w,
        peak_w=member.spec.peak_w,
        start=start,
        minutes=minutes,
    )


class Batteries:
    """The batteries' charge and discharge per interval, computed a day at a time."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._days: dict[tuple[str, dt.date], list[tuple[int, int]]] = {}

    def wh(self, member: Member, profile: str, start: dt.datetime, minutes: int) -> int:
        midnight = dt.datetime.combine(start.date(), dt.time(), tzinfo=dt.UTC)
        key = (member.spec.slug, start.date())
        if key not in self._days:
            step = dt.timedelta(minutes=minutes)
            starts = [midnight + i * step for i in range(DAY // step)]
            self._days[key] = profiles.battery_day(
                pv=[site_wh(self.seed, member, "pv", s, minutes) for s in starts],
                load=[site_wh(self.seed, member, "load", s, minutes) for s in starts],
                capacity_wh=member.spec.battery_wh,
                power_w=member.spec.battery_w,
                minutes=minutes,
            )
        charge, discharge = self._days[key][(start - midnight) // dt.timedelta(minutes=minutes)]
        return charge if profile == "charge" else discharge


def storage_contract(api: Api, member: Member, first_day: dt.datetime) -> int:
    """The battery's active storage balancing contract, drafted and agreed by the prosumer
    the first time, from the first day of readings on (its days must run in order, each
    with complete readings)."""
    found = api.get("/contracts/?kind=storage_balancing&status=active")
    for contract in found["results"]:
        if contract["terms"].get("device_id") == member.battery.pk:
            return contract["id"]
    number = member.account.number
    contract = api.post(
        "/contracts/",
        {
            "kind": "storage_balancing",
            "start_at": first_day.isoformat(),
            "end_at": (first_day + 366 * DAY).isoformat(),
            "terms": {
                "device_id": member.battery.pk,
                "charge_account": number,
                "storage_account": number,
                "efficiency_ppm": 1_000_000,
                "capacity_wh": member.spec.battery_wh,
            },
        },
    )
    api.post(f"/contracts/{contract['id']}/agree/", {})
    return contract["id"]


def contracts_tick() -> None:
    """The contracts app's periodic calendar tick, once, at the simulated time: it runs
    each storage contract's complete days in order (and whatever else is due)."""
    from registry.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE[TICK]
    app.tasks[entry["task"]].apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {})).get()


def storage_days(api: Api, contract_id: int) -> list[dict]:
    """The contract's executed days, oldest first (over HTTP)."""
    found = api.get(f"/contracts/{contract_id}/executions/?page_size=500")
    rows = found["results"] if isinstance(found, dict) else found
    return sorted(rows, key=lambda row: row["trigger"])
