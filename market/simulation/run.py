"""Play a simulated day of the community: per slot, each member's agent decides and
orders, the slot clears, the members' meters send their signed readings, and the
operator settles the slot against them; then a bill per member and the checks.

Over HTTP (a real server, `clock.local_server`): delegating the agents
(POST /market/agents/), the readings (POST /readings/), the settlements
(POST /market/clearings/{id}/settle/) and the money (GET /market/settlement-accounts/).
The agents' runs (`agent_run_slot`), the clearing (`slot_clear`), the automatic hourly
issuance of the prosumers' PV (`certificate_auto_issue`) and the later delivery of the
certificates issued after a slot settled (`slot_certificates_deliver`) have no HTTP path
(the periodic tasks and the readings hook run them), so the simulation calls those
services at the simulated time.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field

from django.db.models import F, Sum

from assets.canonical import reading_bytes
from certificates.allocation import floor_hour
from certificates.models import IssuedPeriod
from certificates.services import certificate_auto_issue
from ledger.integrity import LedgerTampered, ledger_verify
from ledger.services import ledger_integrate_pending
from market.agents.services import agent_run_slot
from market.models import SlotClearing, SlotSettlement
from market.services import slot_certificates_deliver, slot_clear
from market.simulation.battery import (
    Batteries,
    contracts_tick,
    site_wh,
    storage_contract,
    storage_days,
)
from market.simulation.clock import Api, ApiError, SimulatedClock, local_server
from market.simulation.community import (
    Community,
    Member,
    community_get_or_create,
    tokens_create,
    tokens_revoke,
)
from market.slots import slot_gate_closure

MINUTE = dt.timedelta(minutes=1)


@dataclass
class Bill:
    """One member's day: Wh sold and bought through the market (delivered), the money it
    received (+) or paid (-), the Wh of certificates it received for the energy it bought
    (`certificates_wh`), and for a prosumer the Wh of certificates issued for its PV (and
    its battery's discharge) in the played hours (`issued_wh`) and how many of them went
    to its buyers (`certificates_sold_wh`)."""

    name: str
    sold_wh: int = 0
    bought_wh: int = 0
    money_minor: int = 0
    certificates_wh: int = 0
    certificates_sold_wh: int = 0
    issued_wh: int = 0


@dataclass
class Battery:
    """The battery's days its storage balancing contract ran (the whole history and the
    played day, if it was played to its end) and what the agent read of its charge."""

    name: str
    days_applied: int = 0
    days_failed: list[str] = field(default_factory=list)  # "day:…: reason"
    charged_wh: int = 0
    discharged_wh: int = 0
    certified_wh: int = 0  # storage certificates issued for the discharge
    charge_read_wh: list[int] = field(default_factory=list)  # by the agent, per slot


@dataclass
class Report:
    day: dt.date
    slots: int
    replayed: int = 0  # slots an earlier run cleared, left as they are
    orders: int = 0
    cleared_wh: int = 0
    settled: int = 0
    waiting: int = 0
    readings: int = 0
    operator_minor: int = 0
    certificates_later_wh: int = 0  # delivered after their slot settled, once issued
    certificates_pending_wh: int = 0  # still owed at the end (their hour is not over)
    battery: Battery | None = None
    bills: list[Bill] = field(default_factory=list)
    ledger_ok: bool = False
    ledger_problem: str = ""

    @property
    def money_total(self) -> int:
        """The members' and the operator's money moves: 0 when money is conserved."""
        return sum(bill.money_minor for bill in self.bills) + self.operator_minor

    @property
    def ok(self) -> bool:
        return self.money_total == 0 and self.ledger_ok


class Simulation:
    def __init__(
        self,
        *,
        day: dt.date,
        slots: int | None,
        seed: int,
        history_days: int,
        first_slot: dt.time = dt.time(),
    ):
        self.day_start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        self.first = dt.datetime.combine(day, first_slot, tzinfo=dt.UTC)
        self.seed = seed
        self.history_days = history_days
        self.clock = SimulatedClock(self.day_start - dt.timedelta(days=history_days + 1))
        self.report = Report(day=day, slots=0)
        self.slots = slots
        self.sent: dict[int, dt.datetime] = {}  # meter id -> readings sent until
        self.orders: dict[int, Member] = {}  # order id -> member
        self.batteries = Batteries(seed)
        self.charge_read: list[int] = []  # the battery charge its agent read, per slot
        self.contracts: dict[int, int] = {}  # organisation id -> storage contract id
        # Days before this midnight have had the contracts' tick (or have no readings yet).
        self.ticked = self.day_start - dt.timedelta(days=history_days)

    def run(self) -> Report:
        with self.clock.installed():
            community = community_get_or_create(now=self.clock.now)
            operator_token, operator_plain = tokens_create(community)
            try:
                with local_server() as url:
                    self._play(community, url, operator_plain)
            finally:
                tokens_revoke(community, operator_token.pk)
        ledger_integrate_pending()
        try:
            ledger_verify()
            self.report.ledger_ok = True
        except LedgerTampered as exc:
            self.report.ledger_problem = str(exc)
        return self.report

    def _play(self, community: Community, url: str, operator_token: str) -> None:
        market = community.market
        length = dt.timedelta(minutes=market.slot_minutes)
        rest = (self.day_start + dt.timedelta(days=1) - self.first) // length
        count = rest if self.slots is None else min(self.slots, rest)
        operator = Api(url, operator_token)
        apis = {m.organisation.pk: Api(url, m.token) for m in community.members}
        for member in community.members:
            member.agent_id = self._delegate(apis[member.organisation.pk], member, market.pk)
            self.sent.update(
                {
                    m.meter.pk: self.day_start - dt.timedelta(days=self.history_days)
                    for m in member.meters
                }
            )
            if member.battery is not None:
                self.contracts[member.organisation.pk] = storage_contract(
                    apis[member.organisation.pk], member, self.ticked
                )
        before = {m.organisation.pk: _money(apis[m.organisation.pk]) for m in community.members}
        operator_before = _money(operator, market.operator_id)
        settled: list[int] = []  # clearing ids
        for index in range(count):
            slot = self.first + index * length
            gate = slot_gate_closure(market, slot)
            if SlotClearing.objects.filter(market=market, slot_start=slot).exists():
                self.report.replayed += 1  # a rerun: an earlier run played this slot
                continue
            self.clock.set(gate - 10 * MINUTE)
            self._send_readings(community, apis, until=self.clock.now)
            if self._tick(self.clock.now):
                self._deliver_pending(market.pk)
            for member in community.members:
                decision = agent_run_slot(agent_id=member.agent_id, slot_start=slot)
                if decision.order_id:
                    self.orders[decision.order_id] = member
                if member.battery is not None and decision.battery_charge_wh is not None:
                    self.charge_read.append(decision.battery_charge_wh)
            self.clock.set(gate + MINUTE)
            clearing = slot_clear(market_id=market.pk, slot_start=slot)
            self.report.slots += 1
            self.report.orders += clearing.orders_count
            self.report.cleared_wh += clearing.volume_wh
            self.clock.set(slot + length + MINUTE)
            self._send_readings(community, apis, until=slot + length)
            hour_over = (slot + length) == floor_hour(slot + length)
            if hour_over:
                self._issue(community)
            if clearing.volume_wh:
                operator.post(f"/market/clearings/{clearing.pk}/settle/")
                settled.append(clearing.pk)
            if hour_over:
                self._deliver_pending(market.pk)
            if self._tick(slot + length):  # the day is over: the battery's day runs
                self._deliver_pending(market.pk)
        end = self.first + count * length
        hours = (floor_hour(self.first), _ceil_hour(end))
        self._bill(community, apis, operator, settled, before, operator_before, hours)

    def _bill(self, community, apis, operator, settled, before, operator_before, hours) -> None:
        """Each member's bill from the slots' final settlements (read over HTTP: the
        certificates delivered later are in the lines) and its settlement account;
        `hours` bound the played hours, whose issued certificates the bill counts."""
        market = community.market
        bills = {m.organisation.pk: Bill(m.spec.legal_name) for m in community.members}
        for clearing_id in settled:
            settlement = operator.get(f"/market/clearings/{clearing_id}/settlement/")
            self.report.certificates_pending_wh += settlement["certificates_pending_wh"]
            if settlement["status"] == "settled":
                self.report.settled += 1
            else:
                self.report.waiting += 1
            for line in settlement["lines"]:
                bill = bills[self.orders[line["order"]].organisation.pk]
                if line["side"] == "sell":
                    bill.sold_wh += line["delivered_wh"]
                    bill.certificates_sold_wh += line.get("certificates_wh") or 0
                else:
                    bill.bought_wh += line["delivered_wh"]
                    bill.certificates_wh += line.get("certificates_wh") or 0
        for member in community.members:
            bill = bills[member.organisation.pk]
            bill.money_minor = _money(apis[member.organisation.pk]) - before[member.organisation.pk]
            devices = [member.device.pk] + ([member.battery.pk] if member.battery else [])
            bill.issued_wh = _issued_wh(devices, *hours)
            self.report.bills.append(bill)
        self.report.operator_minor = _money(operator, market.operator_id) - operator_before
        for member in community.members:
            if member.battery is not None:
                self.report.battery = self._battery(apis[member.organisation.pk], member)

    def _battery(self, api: Api, member: Member) -> Battery:
        """The battery's contract days from the first day of readings to the played day."""
        battery = Battery(f"{member.spec.legal_name} battery", charge_read_wh=self.charge_read)
        first = (self.day_start - dt.timedelta(days=self.history_days)).date().isoformat()
        last = self.day_start.date().isoformat()
        for day in storage_days(api, self.contracts[member.organisation.pk]):
            if not first <= day["trigger"].removeprefix("day:") <= last:
                continue
            if day["status"] != "applied":
                battery.days_failed.append(f"{day['trigger']}: {day['reason_code']}")
                continue
            battery.days_applied += 1
            battery.charged_wh += day["result"]["charged_wh"]
            battery.discharged_wh += day["result"]["discharged_wh"]
            battery.certified_wh += day["result"]["certified_wh"]
        return battery

    def _tick(self, until: dt.datetime) -> bool:
        """Once the readings cover a new whole UTC day, the contracts' calendar tick runs
        the storage contracts' complete days (up to 31 a tick); True when it ran."""
        midnight = dt.datetime.combine(until.date(), dt.time(), tzinfo=dt.UTC)
        if not self.contracts or midnight <= self.ticked:
            return False
        for _ in range(1 + (midnight - self.ticked).days // 31):
            contracts_tick()
        self.ticked = midnight
        return True

    def _issue(self, community: Community) -> None:
        """The prosumers' automatic hourly issuance, as the periodic sweep runs it: every
        complete hour not issued yet. The readings hook usually did it already when the
        hour's last readings were accepted (with no Celery broker, as their request
        committed); running it here keeps the day independent of a worker."""
        for member in community.members:
            if member.spec.pv_w:
                certificate_auto_issue(device_id=member.device.pk)

    def _deliver_pending(self, market_id: int) -> None:
        """The certificates issued since a slot settled go to its buyers, as the periodic
        `market-slots-settle` task delivers them after settling."""
        pending = (
            SlotSettlement.objects.filter(
                market_id=market_id,
                status=SlotSettlement.Status.SETTLED,
                certificates_pending_wh__gt=0,
            )
            .order_by("slot_start", "pk")
            .values_list("pk", flat=True)
        )
        for settlement_id in list(pending):
            self.report.certificates_later_wh += slot_certificates_deliver(
                settlement_id=settlement_id
            )

    def _delegate(self, api: Api, member: Member, market_id: int) -> int:
        try:
            agent = api.post(
                "/market/agents/",
                {
                    "market": market_id,
                    "account": member.account.pk,
                    "min_sell_price": member.spec.min_sell_price,
                    "max_buy_price": member.spec.max_buy_price,
                    "history_days": self.history_days,
                },
            )
        except ApiError as exc:
            if exc.body.get("code") != "market_agent_exists":
                raise
            found = api.get(f"/market/agents/?market={market_id}&status=active")
            agent = found["results"][0]
        return agent["id"]

    def _send_readings(self, community: Community, apis: dict[int, Api], *, until) -> None:
        """Each meter signs and sends its readings from where it stopped up to `until`."""
        step = dt.timedelta(minutes=15)
        for member in community.members:
            api = apis[member.organisation.pk]
            for sim in member.meters:
                rows = []
                start = self.sent[sim.meter.pk]
                while start + step <= until:
                    rows.append(self._row(member, sim, start, step))
                    start += step
                if rows:
                    result = api.post(f"/readings/?device={sim.meter.device_id}", rows)
                    if result.get("status") not in ("accepted", "unchanged"):  # unchanged: a rerun
                        raise ApiError("POST", "/readings/", 200, result)
                    self.report.readings += int(result.get("stored") or 0)
                self.sent[sim.meter.pk] = start

    def _row(self, member: Member, sim, start: dt.datetime, step: dt.timedelta) -> dict:
        minutes = int(step.total_seconds() // 60)
        name = sim.meter.serial
        if sim.profile in ("charge", "discharge"):
            wh = self.batteries.wh(member, sim.profile, start, minutes)
        else:
            wh = site_wh(self.seed, member, sim.profile, start, minutes)
        end = start + step
        signature = sim.key.sign(reading_bytes(name, start, end, wh)).signature
        return {
            "meter": name,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "wh": wh,
            "signature": base64.b64encode(signature).decode(),
        }


def _ceil_hour(moment: dt.datetime) -> dt.datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + dt.timedelta(hours=1)


def _issued_wh(device_ids: list[int], start: dt.datetime, end: dt.datetime) -> int:
    """Wh of certificates issued (not withdrawn) for the devices' production in [start, end):
    a PV's, and a battery's storage certificates for its discharge."""
    found = IssuedPeriod.objects.filter(
        device_id__in=device_ids,
        withdrawn_at__isnull=True,
        period_start__gte=start,
        period_end__lte=end,
    ).aggregate(wh=Sum(F("unit_end") - F("unit_start")))
    return found["wh"] or 0


def _money(api: Api, organisation_id: int | None = None) -> int:
    """The organisation's EUR money (available + reserved), read over HTTP."""
    query = "?currency=EUR" + (f"&organisation={organisation_id}" if organisation_id else "")
    found = api.get(f"/market/settlement-accounts/{query}")
    rows = found["results"] if isinstance(found, dict) else found
    return sum(
        row["available"] + row["reserved"]
        for row in rows
        if row["currency"] == "EUR"
        and (organisation_id is None or row["organisation"] == organisation_id)
    )


def simulate(
    *,
    day: dt.date,
    slots: int | None = None,
    seed: int = 1,
    history_days: int = 7,
    first_slot: dt.time = dt.time(),
) -> Report:
    """Play `slots` slots of `day` (UTC) from `first_slot` on (default: the whole day)."""
    return Simulation(
        day=day, slots=slots, seed=seed, history_days=history_days, first_slot=first_slot
    ).run()
