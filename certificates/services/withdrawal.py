"""Withdrawal by device and period: the issuing body withdraws every certificate a device
produced in [start, end), wherever it is held, after an optional dry run.

What happens to each certificate (each leaf bundle: what was split from a bundle is
followed to every holder):

- active, reserved (a pending transfer of it is cancelled) and expired ones become
  `withdrawn`;
- retired and exported ones keep their status — a retirement is final and its statement
  stays, an export has left the registry — and are *flagged*: the withdrawal lists them
  (`WithdrawalItem.previous_status`), and their statements and histories say so;
- ones withdrawn already are skipped.

A bundle's units are not tied to hours within its production period (an issuance of
granularity `period` makes one bundle per owner for its whole range), so a period that
starts or ends inside a bundle's period is refused (`period_cuts_bundle`, with the
bundles and the period that would cover them) rather than splitting the bundle by a
guess. Hourly bundles, the default, are never cut by a period of whole hours.

Locking: as `certificate_withdraw` (bundles in primary-key order, the tree looked at again
after locking, in case a concurrent transfer split a bundle in between).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction

from accounts.models import User
from certificates import errors, storage
from certificates.models import Bundle, Withdrawal, WithdrawalItem
from certificates.services.common import _require_issuing_body
from certificates.services.retirement import _withdraw_trees

LIVE = (Bundle.Status.ACTIVE, Bundle.Status.RESERVED, Bundle.Status.EXPIRED)
KEPT = (Bundle.Status.RETIRED, Bundle.Status.EXPORTED, Bundle.Status.STORED)


@dataclass
class DeviceWithdrawal:
    """What a withdrawal by device and period does (dry run) or did: bundles withdrawn,
    bundles flagged (retired or exported: status kept), bundles skipped (withdrawn
    already), and the withdrawal record (None on a dry run)."""

    device_id: int
    device_name: str
    period_start: dt.datetime
    period_end: dt.datetime
    withdrawn: list[Bundle] = field(default_factory=list)
    flagged: list[Bundle] = field(default_factory=list)
    skipped: list[Bundle] = field(default_factory=list)
    withdrawal: Withdrawal | None = None

    @property
    def volume_wh(self) -> int:
        return sum(b.volume_wh for b in self.withdrawn + self.flagged)


def _check_period(start: object, end: object) -> None:
    aware = all(isinstance(v, dt.datetime) and v.utcoffset() is not None for v in (start, end))
    if not aware or end <= start:  # type: ignore[operator]
        raise errors.InvalidPeriod(
            "Give the period to withdraw: a start before its end, with their time zone.",
            fields={"period_start": ["before period_end, time zone required"]},
        )


def _plan(device_id: int, start: dt.datetime, end: dt.datetime) -> tuple[set[int], list[Bundle]]:
    """The root bundles of the device's production in [start, end) and their leaves
    (read without locks: the caller locks before writing). Refuses a period that cuts a
    bundle's production period."""
    roots = list(
        Bundle.objects.filter(
            device_id=device_id,
            parent__isnull=True,
            period_start__lt=end,
            period_end__gt=start,
        ).order_by("period_start", "pk")
    )
    cut = [b for b in roots if b.period_start < start or b.period_end > end]
    if cut:
        raise errors.PeriodCutsBundle(
            bundles=[
                {
                    "bundle": b.pk,
                    "period_start": b.period_start.isoformat(),
                    "period_end": b.period_end.isoformat(),
                }
                for b in cut
            ],
            covering_period_start=min(min(b.period_start for b in cut), start).isoformat(),
            covering_period_end=max(max(b.period_end for b in cut), end).isoformat(),
        )
    root_ids = {b.pk for b in roots}
    leaves = list(
        Bundle.objects.filter(pk__in=storage.bundle_tree_ids(root_ids))
        .exclude(status=Bundle.Status.SPLIT)
        .select_related("account")
        .order_by("period_start", "pk")
    )
    return root_ids, leaves


@transaction.atomic
def certificate_withdraw_for_device(
    *,
    actor: User,
    device_id: int,
    period_start: dt.datetime,
    period_end: dt.datetime,
    reason: str,
    dry_run: bool = False,
) -> DeviceWithdrawal:
    """The issuing body withdraws every certificate a device produced in [start, end),
    wherever it is held (one `certificate.withdrawn` event); `dry_run` checks the same and
    says what would happen, writing nothing."""
    from assets.models import Device

    _require_issuing_body(actor)
    if not isinstance(reason, str) or not reason.strip():
        raise errors.ReasonRequired(fields={"reason": ["required"]})
    _check_period(period_start, period_end)
    device = Device.objects.filter(pk=device_id).only("pk", "name").first()
    if device is None:
        raise errors.DeviceNotFound(device_id=device_id)
    roots, leaves = _plan(device.pk, period_start, period_end)
    done = set(
        WithdrawalItem.objects.filter(bundle_id__in=[b.pk for b in leaves]).values_list(
            "bundle_id", flat=True
        )
    )
    result = DeviceWithdrawal(device.pk, device.name, period_start, period_end)
    for bundle in leaves:
        if bundle.pk in done or bundle.status == Bundle.Status.WITHDRAWN:
            result.skipped.append(bundle)
        elif bundle.status in KEPT:
            result.flagged.append(bundle)
        else:
            result.withdrawn.append(bundle)
    nothing = errors.NothingToWithdraw(
        device_id=device.pk,
        period_start=period_start.isoformat(),
        period_end=period_end.isoformat(),
        skipped_bundle_ids=[b.pk for b in result.skipped],
    )
    if dry_run:
        if not result.withdrawn and not result.flagged:
            raise nothing
        return result
    # No refusal from the unlocked plan: a transfer committing between its two reads can
    # show the root split and none of its pieces yet. `_withdraw_trees` locks, walks the
    # tree again and refuses with `nothing` only when every leaf is withdrawn already.
    result.withdrawal = _withdraw_trees(
        actor=actor,
        reason=reason,
        roots=roots,
        nothing_left=nothing,
        extra_data={
            "device_period": {
                "device_id": device.pk,
                "period_start": period_start,
                "period_end": period_end,
            }
        },
    )
    # What was written, under the locks (a transfer may have split a bundle meanwhile).
    items = WithdrawalItem.objects.filter(withdrawal=result.withdrawal).select_related(
        "bundle__account"
    )
    result.withdrawn, result.flagged = [], []
    for item in items.order_by("bundle__period_start", "bundle_id"):
        (result.flagged if item.previous_status in KEPT else result.withdrawn).append(item.bundle)
    return result
