"""Demo certificates: a day of hourly certificates of the demo PV plant, part sold to the
buyer, part of that retired for a named beneficiary. Runs after assets.demo; idempotent."""

import datetime as dt

from django.db import transaction
from django.urls import reverse

from accounts.models import Account, User
from certificates import services
from certificates.models import Bundle, Issuance, Retirement
from registry.public_url import registry_base_url

PV_NAME = "Lindenhof residents' rooftop PV"
BUYER = "GreenBuy Energy GmbH"
BENEFICIARY = "Bäckerei Sonnenschein"


def _first_full_day(device) -> dt.datetime | None:
    from assets.models import Reading

    first = Reading.objects.filter(device=device).order_by("start").values_list("start", flat=True)
    start = first.first()
    if start is None:
        return None
    day = dt.datetime.combine(start.astimezone(dt.UTC).date(), dt.time(0), tzinfo=dt.UTC)
    return day if day == start else day + dt.timedelta(days=1)


@transaction.atomic
def seed(stdout) -> None:
    from assets.models import Device

    device = Device.objects.filter(name=PV_NAME).first()
    if device is None:
        stdout.write("Demo certificates need the demo PV plant (assets.demo) first; skipped.")
        return
    if Retirement.objects.filter(beneficiary_name=BENEFICIARY).exists():
        stdout.write("Demo certificates exist already.")
        return
    admin = User.objects.get(username="admin")
    producer = User.objects.get(username="producer")
    buyer = User.objects.get(username="buyer")
    buyer_account = Account.objects.get(
        organisation__legal_name=BUYER, kind=Account.Kind.TRADING, status=Account.Status.OPEN
    )
    stdout.write("Creating demo certificates:")
    # The plant issues automatically as its readings arrive; otherwise issue its first day.
    issuance = Issuance.objects.filter(device=device).order_by("pk").first()
    if issuance is None:
        day = _first_full_day(device)
        if day is None:
            stdout.write("The demo PV plant has no readings; no demo certificates.")
            return
        issuance = services.certificate_issue(
            actor=admin,
            device_id=device.pk,
            period_start=day,
            period_end=day + dt.timedelta(days=1),
        )
    stdout.write(
        f"  issued {issuance.volume_wh} Wh for {issuance.period_start:%Y-%m-%d %H:%M} to "
        f"{issuance.period_end:%Y-%m-%d %H:%M} as hourly bundles "
        f"(units {issuance.unit_start}-{issuance.unit_end})"
    )
    coop_bundles = list(
        Bundle.objects.filter(issuance=issuance)
        .exclude(account=buyer_account)
        .order_by("-unit_end", "pk")
    )
    coop_bundles.sort(key=lambda b: -b.volume_wh)
    noon = coop_bundles[0]
    sale = services.certificate_transfer(
        actor=producer,
        bundle_id=noon.pk,
        to_account_id=buyer_account.pk,
        volume_wh=max(1, noon.volume_wh * 3 // 4),
    )
    batch = services.certificate_transfer_batch(
        actor=producer,
        to_account_id=buyer_account.pk,
        items=[(b.pk, None) for b in coop_bundles[1:4]],
    )
    stdout.write(
        f"  sold {sale.volume_wh + sum(t.volume_wh for t in batch)} Wh to {BUYER} "
        f"(transfer {sale.pk} and a batch of {len(batch)})"
    )
    retirement: Retirement = services.certificate_retire(
        actor=buyer,
        items=[(sale.bundle_id, max(1, sale.volume_wh * 2 // 3))],
        beneficiary_name=BENEFICIARY,
        beneficiary_country="DE",
        consumption_start=noon.period_start,
        consumption_end=noon.period_end,
        location="Berlin-Mitte, DE",
        purpose=Retirement.Purpose.HOURLY_MATCHING,
    )
    url = registry_base_url() + reverse("certificates:statement", args=[retirement.public_id])
    stdout.write(f"  retired {retirement.volume_wh} Wh for {BENEFICIARY}: statement {url}")
