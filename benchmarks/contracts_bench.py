"""Contract execution on issuance against the issuance alone, in one run (PostgreSQL).

Two fleets of identical devices are issued hour by hour, interleaved: one fleet has no
contracts (the baseline: issuance alone), the other has per device a PPA (30%) and a
standing transfer (20%) of the same seller account, so each issuance there also runs two
executions (plan, split transfers, obligation and its payment through the market's
settlement accounts, events) in their own transactions, as the `certificates.issued`
hook starts them on commit. Prints both times and their ratio (aim: at most 2x).
`--unfunded` leaves the buyer without money (obligations stay open), to see what the
payments cost. `--indexed` prices the PPAs at an energy market's cleared price instead of
a fixed one (four 15-minute clearings an hour, loaded as setup), to see what the price
lookup and its recorded inputs cost.

`--period-hours N` issues N hours per `certificate_issue` (24: a day of hourly
certificates at once, as the periodic sweep does after a gap) instead of one, and
`--contracts-per-device K` gives each device K share contracts instead of the PPA and the
standing transfer (alternately PPAs to K/2 buyers and standing transfers to K/2 accounts,
10000 / (K + 1) bp each), so `--devices 100 --contracts-per-device 10` has the issue's
1,000 active contracts.

    DATABASE_URL=postgres://…/gp_bench python benchmarks/contracts_bench.py [--smoke]
"""

import argparse
import datetime as dt
import os
import time
from fractions import Fraction

import support


def _fresh(cfg: dict) -> None:
    """Start from an empty database: the factories' names repeat from run to run."""
    support.recreate_database(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=20, help="per fleet")
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--smoke", action="store_true", help="tiny: 2 devices x 3 hours")
    parser.add_argument(
        "--unfunded",
        action="store_true",
        help="no deposit for the buyer: obligations stay open (short funds), no money moves",
    )
    parser.add_argument(
        "--indexed", action="store_true", help="PPAs at the energy market's cleared price"
    )
    parser.add_argument("--period-hours", type=int, default=1, help="hours per issuance")
    parser.add_argument(
        "--contracts-per-device", type=int, default=2, help="share contracts per device"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="statements by shape (count, ms) of the first and the last issuance round of "
        "each fleet, and cProfile of the contract fleet's last round",
    )
    args = parser.parse_args()
    if args.hours % args.period_hours:
        parser.error("--hours must be a multiple of --period-hours")
    if args.smoke:
        args.devices, args.hours = 2, 3
    os.environ.pop("CELERY_BROKER_URL", None)
    cfg = support.ensure_database()
    _fresh(cfg)
    import django

    django.setup()
    import ledger.services

    ledger.services.kick = lambda: None  # integration is not what is measured here
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import Membership
    from certificates import services as certificates
    from contracts import services
    from contracts.models import ContractExecution, SettlementObligation
    from market.services import settlement_deposit
    from tests.certificates.factories import add_readings, device_with_owners, holder
    from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user

    day = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    ib = issuing_body_user()
    buyers = []
    for n in range(max(1, (args.contracts_per_device + 1) // 2)):
        buyer_org = OrganisationFactory(is_producer=False)
        buyer_account = AccountFactory(organisation=buyer_org)
        buyers.append((buyer_account, holder(buyer_account, Membership.Role.ADMIN)))
        if not args.unfunded:  # every PPA execution then pays the seller through the market
            settlement_deposit(
                actor="system:bench",
                organisation_id=buyer_org.pk,
                currency="EUR",
                amount_minor=10**12,
                reference=f"bench-funding-{n}",
            )
    pricing = {"price_per_mwh_minor": 5_000}
    if args.indexed:
        from django.utils import timezone

        from market.models import SlotClearing
        from tests.market.factories import EnergyMarketFactory

        energy = EnergyMarketFactory(currency="EUR")
        SlotClearing.objects.bulk_create(
            SlotClearing(
                market=energy,
                slot_start=day + dt.timedelta(minutes=15 * q),
                price=4_000 + (q % 96) * 50,
                volume_wh=10_000 + q % 7,
                orders_count=2,
                cleared_at=timezone.now(),
            )
            for q in range(4 * args.hours)
        )
        pricing = {
            "price_index": {
                "market": energy.code,
                "spread_per_mwh_minor": -300,
                "cap_per_mwh_minor": 8_000,
                "fallback_per_mwh_minor": 5_000,
            }
        }
    plain, with_contracts = [], []
    for i in range(2 * args.devices):
        device, (account,) = device_with_owners([Fraction(1)])
        add_readings(device, start=day, hours=args.hours, wh=lambda h: 1_000 + h)
        if i % 2 == 0:
            plain.append(device)
            continue
        seller = holder(account, Membership.Role.ADMIN)
        window = {"start_at": day - dt.timedelta(days=1), "end_at": day + dt.timedelta(days=400)}
        k = args.contracts_per_device
        share_bp = 3_000 if k == 2 else 10_000 // (k + 1)
        for n in range(k):
            if n % 2 == 0:  # a PPA to the next buyer
                buyer_account, buyer = buyers[n // 2]
                ppa = services.contract_create(
                    actor=seller,
                    kind="ppa_pay_as_produced",
                    terms={
                        "device_id": device.pk,
                        "seller_account": account.number,
                        "buyer_account": buyer_account.number,
                        "share_bp": share_bp,
                        **pricing,
                        "currency": "EUR",
                    },
                    **window,
                )
                services.contract_agree(actor=seller, contract_id=ppa.pk)
                services.contract_agree(actor=buyer, contract_id=ppa.pk)
                continue
            forward_to = AccountFactory(organisation=account.organisation)
            standing = services.contract_create(
                actor=seller,
                kind="standing_transfer",
                terms={
                    "from_account": account.number,
                    "to_account": forward_to.number,
                    "share_bp": 2_000 if k == 2 else share_bp,
                },
                **window,
            )
            services.contract_agree(actor=seller, contract_id=standing.pk)
        with_contracts.append(device)

    spent = {"issuance alone": 0.0, "issuance + contracts": 0.0}
    step = args.period_hours
    rounds = range(0, args.hours, step)
    for hour in rounds:
        start = day + dt.timedelta(hours=hour)
        for name, fleet in (("issuance alone", plain), ("issuance + contracts", with_contracts)):

            def issue_round(fleet=fleet, start=start) -> None:
                for device in fleet:
                    certificates.certificate_issue(
                        actor=ib,
                        device_id=device.pk,
                        period_start=start,
                        period_end=start + dt.timedelta(hours=step),
                    )

            profiled = args.profile and hour in (rounds[0], rounds[-1])
            began = time.perf_counter()
            if profiled:
                label = f"{name}, {'first' if hour == rounds[0] else 'last'} round"
                support.statements_profile(
                    issue_round, label, cprofile=hour == rounds[-1] and fleet is with_contracts
                )
            else:
                issue_round()
            spent[name] += time.perf_counter() - began
    issuances = args.devices * (args.hours // step)
    executions = ContractExecution.objects.filter(status="applied").count()
    expected = args.contracts_per_device * issuances
    print(
        f"PostgreSQL {cfg['NAME']}; {args.devices} devices per fleet x {args.hours} hours, "
        f"{step} h per issuance; {args.contracts_per_device * args.devices} active contracts"
        f"{'; PPAs indexed to the market' if args.indexed else ''}"
    )
    for name, seconds in spent.items():
        print(f"{name:22s} {seconds:8.2f} s  {issuances / seconds:8.1f} issuances/s")
    print(
        f"executions applied     {executions} of {expected}  "
        f"({executions / spent['issuance + contracts']:.1f} issuances+executions/s)"
    )
    paid = SettlementObligation.objects.filter(status="settled").count()
    owed = SettlementObligation.objects.count()
    print(f"obligations paid       {paid} of {owed}{' (unfunded run)' if args.unfunded else ''}")
    ratio = spent["issuance + contracts"] / spent["issuance alone"]
    print(f"ratio (with contracts / issuance alone): {ratio:.2f}x  (aim <= 2x)")
    if executions != expected:
        raise SystemExit("not every execution applied")
    if (
        args.indexed
        and ContractExecution.objects.filter(
            contract__kind="ppa_pay_as_produced", result__index_prices__isnull=True
        ).exists()
    ):
        raise SystemExit("a PPA execution without its index prices")
    if paid != (0 if args.unfunded else owed):
        raise SystemExit("obligations paid do not match the funding")


if __name__ == "__main__":
    main()
