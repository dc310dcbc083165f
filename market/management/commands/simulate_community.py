"""Simulate an energy community trading a day of slots over the HTTP API.

    manage.py simulate_community                       # yesterday, every slot
    manage.py simulate_community --day 2026-12-04 --first-slot 11:00 --slots 8 --seed 7 \
        --history-days 3

See docs/market.md, "A simulated community". Exits non-zero when money is not conserved or
the ledger does not verify.
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from market.simulation.clock import ApiError
from market.simulation.run import simulate


def _eur(minor: int) -> str:
    sign = "-" if minor < 0 else "+"
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


class Command(BaseCommand):
    help = (
        "Run a simulated community of prosumers and households whose trading agents trade "
        "a day of slots through the HTTP API, settled against their signed readings."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--day", help="UTC day to simulate (default: yesterday).")
        parser.add_argument("--slots", type=int, help="Slots to play (default: the whole day).")
        parser.add_argument(
            "--first-slot", default="00:00", help="UTC time of the first slot (default 00:00)."
        )
        parser.add_argument("--seed", type=int, default=1, help="Meter data seed (default 1).")
        parser.add_argument(
            "--history-days", type=int, default=7, help="Days of readings before the day (1-60)."
        )

    def handle(self, *args, day, slots, first_slot, seed, history_days, **options) -> None:
        try:
            chosen = (
                dt.date.fromisoformat(day) if day else timezone.now().date() - dt.timedelta(days=1)
            )
        except ValueError:
            raise CommandError(f"--day {day!r}: give a date such as 2026-12-04") from None
        try:
            first = dt.time.fromisoformat(first_slot)
        except ValueError:
            raise CommandError(f"--first-slot {first_slot!r}: give a time such as 11:00") from None
        if not 1 <= history_days <= 60:
            raise CommandError("--history-days must be 1-60.")
        if slots is not None and slots < 1:
            raise CommandError("--slots must be 1 or more.")
        if chosen >= timezone.now().date():
            raise CommandError("--day must be a day before today (readings are never future).")
        try:
            report = simulate(
                day=chosen, slots=slots, seed=seed, history_days=history_days, first_slot=first
            )
        except (LookupError, ApiError) as exc:
            raise CommandError(str(exc)) from None
        out = self.stdout
        out.write(
            f"Simulated {report.day}: {report.slots} slots, {report.orders} orders, "
            f"{report.cleared_wh} Wh cleared, {report.settled} settlements settled, "
            f"{report.waiting} waiting, {report.readings} signed readings stored."
        )
        if report.replayed:
            out.write(f"{report.replayed} slots were played by an earlier run; left as they are.")
        out.write(
            f"{'member':<24}{'sold Wh':>9}{'bought Wh':>11}{'EUR':>10}"
            f"{'cert. in':>10}{'issued':>9}{'cert. out':>11}"
        )
        for bill in report.bills:
            out.write(
                f"{bill.name:<24}{bill.sold_wh:>9}{bill.bought_wh:>11}"
                f"{_eur(bill.money_minor):>10}{bill.certificates_wh:>10}"
                f"{bill.issued_wh:>9}{bill.certificates_sold_wh:>11}"
            )
        out.write(f"{'market operator (fees)':<24}{'':>20}{_eur(report.operator_minor):>10}")
        out.write(
            "Certificates (Wh): 'cert. in' received with the energy bought, 'issued' for the "
            "member's PV and battery in the played hours, 'cert. out' of those delivered to "
            "its buyers; "
            f"{report.certificates_later_wh} delivered after their slot settled (once its hour "
            f"was issued), {report.certificates_pending_wh} still pending (hour not over)."
        )
        battery = report.battery
        if battery is not None:
            seen = battery.charge_read_wh  # intraday: one value per slot, so a range
            reads = f"{min(seen)} to {max(seen)}" if seen else "nothing"
            out.write(
                f"{battery.name}: storage balancing ran {battery.days_applied} days "
                f"(charged {battery.charged_wh} Wh from the PV surplus, discharged "
                f"{battery.discharged_wh} Wh, {battery.certified_wh} Wh issued as storage "
                f"certificates); its agent read an intraday charge of {reads} Wh."
            )
            for failed in battery.days_failed:
                out.write(f"  battery day not applied: {failed}")
        out.write(f"Money moved in total: {report.money_total} minor units (0 = conserved).")
        out.write("Ledger OK." if report.ledger_ok else f"LEDGER: {report.ledger_problem}")
        if not report.ok:
            raise CommandError("The simulation's checks failed.")
