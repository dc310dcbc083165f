"""What the transfer and retirement responses cost to render: fields built once per thread
(`registry.api.serializers.FieldsBuiltOnce`) against DRF's own field building.

    DJANGO_ENV=development .venv/bin/python benchmarks/serializer_bench.py \
        [--renders 5000] [--rounds 3] [--smoke]

In rounds, for each of `TransferOutputSerializer` and `RetirementOutputSerializer`, it
times `Serializer(instance).data` as the API builds it (fields built once per thread) and
the same class with DRF's own `fields` (the declared fields deep-copied, and for the
retirement's ModelSerializer its model introspected, on every instance). The raw
baseline, in the same process: the same response body written out as a dict literal, the
least a response body can cost. The instances are unsaved (no database): a split transfer
between two accounts, and a retirement of one bundle with its statement URLs built for a
request.
"""

import argparse
import datetime as dt
import statistics
import time
import uuid

import django
import support  # noqa: F401  (sys.path, settings)
from support import SMOKE_HELP, apply_smoke

django.setup()

from django.test import RequestFactory  # noqa: E402
from django.urls import reverse  # noqa: E402
from rest_framework import serializers  # noqa: E402

from accounts.models import Account, Organisation  # noqa: E402
from certificates.api.serializers import (  # noqa: E402
    RetirementOutputSerializer,
    TransferOutputSerializer,
)
from certificates.models import Retirement, RetirementItem, Transfer  # noqa: E402

NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)


class FreshTransferOutput(TransferOutputSerializer):
    fields = serializers.Serializer.fields


class FreshRetirementOutput(RetirementOutputSerializer):
    fields = serializers.Serializer.fields


def instances():
    org = Organisation(pk=3, legal_name="Sonnenfeld eG")
    sender = Account(pk=1, number="GP-0001", organisation=org)
    receiver = Account(pk=2, number="GP-0002", organisation=org)
    transfer = Transfer(
        pk=11, bundle_id=8, source_id=7, volume_wh=1, from_account=sender, to_account=receiver,
        status=Transfer.Status.COMPLETED, created_at=NOW, decided_at=None,
    )  # fmt: skip
    retirement = Retirement(
        pk=12, public_id=uuid.uuid4(), account=sender, retired_at=NOW, volume_wh=1000,
        beneficiary_name="Kunde 4711", beneficiary_country="DE", consumption_start=NOW,
        consumption_end=NOW + dt.timedelta(hours=1), location="", purpose="scope2_market_based",
        claim_salt="00" * 16, claim_commitment="11" * 32,
    )  # fmt: skip
    retirement._prefetched_objects_cache = {"items": [RetirementItem(bundle_id=9)]}
    return transfer, retirement


def raw_transfer(t: Transfer) -> dict:
    return {
        "id": t.pk, "bundle": t.bundle_id, "source_bundle": t.source_id,
        "volume_wh": t.volume_wh, "from_account": t.from_account_id,
        "from_account_number": t.from_account.number, "to_account": t.to_account_id,
        "to_account_number": t.to_account.number, "status": t.status,
        "created_at": t.created_at.isoformat().replace("+00:00", "Z"), "decided_at": None,
    }  # fmt: skip


def raw_retirement(r: Retirement, request) -> dict:
    return {
        "public_id": str(r.public_id), "account": r.account_id,
        "account_number": r.account.number,
        "organisation_name": r.account.organisation.legal_name,
        "retired_at": r.retired_at.isoformat(), "volume_wh": r.volume_wh,
        "beneficiary_name": r.beneficiary_name, "beneficiary_country": r.beneficiary_country,
        "consumption_start": r.consumption_start.isoformat(),
        "consumption_end": r.consumption_end.isoformat(), "location": r.location,
        "purpose": r.purpose, "claim_salt": r.claim_salt,
        "claim_commitment": r.claim_commitment,
        "bundles": [item.bundle_id for item in r.items.all()],
        "statement_url": request.build_absolute_uri(
            reverse("certificates:statement", args=[r.public_id])
        ),
        "statement_api_url": request.build_absolute_uri(
            reverse("statement-detail", args=[r.public_id])
        ),
    }  # fmt: skip


def per_call_us(call, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, renders=50, rounds=1)

    transfer, retirement = instances()
    request = RequestFactory(SERVER_NAME="localhost").get("/")
    context = {"request": request}
    # The classes must agree before their costs are compared.
    assert TransferOutputSerializer(transfer).data == FreshTransferOutput(transfer).data
    ours = RetirementOutputSerializer(retirement, context=context).data
    assert ours == FreshRetirementOutput(retirement, context=context).data
    assert set(ours) == set(raw_retirement(retirement, request))
    cases = {
        "transfer": (
            lambda: raw_transfer(transfer),
            lambda: FreshTransferOutput(transfer).data,
            lambda: TransferOutputSerializer(transfer).data,
        ),
        "retirement": (
            lambda: raw_retirement(retirement, request),
            lambda: FreshRetirementOutput(retirement, context=context).data,
            lambda: RetirementOutputSerializer(retirement, context=context).data,
        ),
    }
    times: dict[str, list[list[float]]] = {name: [[], [], []] for name in cases}
    for _ in range(args.rounds):  # the variants alternate: each sees the same machine
        for name, calls in cases.items():
            for i, call in enumerate(calls):
                times[name][i].append(per_call_us(call, args.renders))
    print(f"median of {args.rounds} rounds x {args.renders:,} renders, µs per response body")
    print(f"  {'':12}{'raw dict':>10}{'DRF fields':>14}{'built once':>14}  saved")
    for name, (raw, fresh, once) in times.items():
        raw_us, fresh_us, once_us = (statistics.median(x) for x in (raw, fresh, once))
        print(
            f"  {name:12}{raw_us:10.1f}{fresh_us:9.1f} ({fresh_us / raw_us:4.1f}x)"
            f"{once_us:9.1f} ({once_us / raw_us:4.1f}x)  {fresh_us - once_us:6.1f} µs"
        )


if __name__ == "__main__":
    main()
