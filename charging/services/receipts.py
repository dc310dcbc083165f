"""Renewable receipts: a billed session's energy matched hour by hour against certificates.

For each clock hour of the bill, active certificates of that hour, from devices in the
station's grid area, held by the chosen account, are retired for the driver's organisation
(beneficiary) through `certificates.services.certificate_retire`, consumption period = the
hour: one retirement statement per matched hour. The receipt records kWh, the price and the
renewable share, and `charging.session_matched` names the session, bill, receipt, the
retirements and the bundles (each retirement also has its own `certificate.retired` event).

Locking: the session row first, then the bundles (inside certificate_retire). That is the
reverse of the usual app order, and safe: no certificates writer ever waits for a charging
row, so no cycle can form; it makes a second receipt for the session wait and then refuse.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, User
from accounts.permissions import user_can_act_for, user_can_act_on_account
from certificates.models import Bundle, Retirement
from certificates.services import certificate_retire
from charging import errors, events, locks
from charging.models import ChargingSession, Receipt, ReceiptHour
from ledger.services import ledger_append

HOUR = dt.timedelta(hours=1)


def _hour_of(value: str) -> dt.datetime:
    return (
        dt.datetime.fromisoformat(value)
        .astimezone(dt.UTC)
        .replace(minute=0, second=0, microsecond=0)
    )


def _pick(
    *, account_id: int, grid_area_id: int, hour: dt.datetime, need_wh: int, today: dt.date
) -> list[tuple[int, int]]:
    """Bundles of the hour and area to retire, oldest first, the last one in part."""
    rows = (
        Bundle.objects.filter(
            account_id=account_id,
            status=Bundle.Status.ACTIVE,
            period_start__gte=hour,
            period_end__lte=hour + HOUR,
            device__grid_area_id=grid_area_id,
        )
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gt=today))  # first expired day
        .order_by("period_start", "pk")
        .values_list("pk", "unit_start", "unit_end")
    )
    items: list[tuple[int, int]] = []
    for pk, unit_start, unit_end in rows.iterator():
        if need_wh <= 0:
            break
        take = min(unit_end - unit_start, need_wh)
        items.append((pk, take))
        need_wh -= take
    return items


@transaction.atomic
def session_match(*, actor: User, session_id: int, account_id: int) -> Receipt:
    """Retire renewable certificates hour by hour for a billed session; make its receipt."""
    session = locks.session_lock(session_id)
    station = session.station
    if not (
        user_can_act_for(actor, station.device.organisation)
        or user_can_act_for(actor, session.driver_organisation)
    ):
        raise errors.NotSessionParty(session_id=session.pk)
    if session.status != ChargingSession.Status.BILLED:
        raise errors.SessionNotBilled(session_id=session.pk)
    if Receipt.objects.filter(session=session).exists():
        raise errors.ReceiptExists(session_id=session.pk)
    account = Account.objects.select_related("organisation").filter(pk=account_id).first()
    if account is None or not account.is_open or not user_can_act_on_account(actor, account):
        raise errors.AccountNotUsable(account_id=account_id)
    bill = session.bill
    driver = session.driver_organisation
    now = timezone.now()
    hours: list[tuple[dt.datetime, int, int, Retirement | None, list[int]]] = []
    for period in bill.periods:
        hour = _hour_of(period["start"])
        need = period["energy_wh"]
        items = _pick(
            account_id=account.pk,
            grid_area_id=station.device.grid_area_id,
            hour=hour,
            need_wh=need,
            today=now.date(),
        )
        retirement = None
        if items:
            retirement = certificate_retire(
                actor=actor,
                items=items,
                beneficiary_name=driver.legal_name,
                beneficiary_country=driver.country,
                consumption_start=hour,
                consumption_end=hour + HOUR,
                purpose=Retirement.Purpose.HOURLY_MATCHING,
                location=station.evse_id,
            )
        matched = sum(volume for _pk, volume in items)
        bundles = list(retirement.items.values_list("bundle_id", flat=True)) if retirement else []
        hours.append((hour, need, matched, retirement, bundles))
    receipt = Receipt.objects.create(
        session=session,
        bill=bill,
        account=account,
        energy_wh=bill.energy_wh,
        renewable_wh=sum(h[2] for h in hours),
        created_at=now,
    )
    ReceiptHour.objects.bulk_create(
        [
            ReceiptHour(
                receipt=receipt, hour_start=hour, energy_wh=need, matched_wh=got, retirement=ret
            )
            for hour, need, got, ret, _bundles in hours
        ]
    )
    retirements = [h[3] for h in hours if h[3] is not None]
    bundle_ids = sorted(pk for h in hours for pk in h[4])
    ledger_append(
        kind=events.SESSION_MATCHED,
        actor=actor,
        subject=[
            session,
            bill,
            receipt,
            *retirements,
            *[("bundle", pk) for pk in bundle_ids],
        ],
        data={
            "session_id": session.pk,
            "bill_id": bill.pk,
            "receipt_id": receipt.pk,
            "account_id": account.pk,
            "energy_wh": receipt.energy_wh,
            "renewable_wh": receipt.renewable_wh,
            "hours": [
                {
                    "hour_start": hour,
                    "energy_wh": need,
                    "matched_wh": got,
                    "retirement_id": ret.pk if ret else None,
                    "statement": str(ret.public_id) if ret else None,
                    "bundle_ids": bundles,
                }
                for hour, need, got, ret, bundles in hours
            ],
        },
    )
    return receipt
