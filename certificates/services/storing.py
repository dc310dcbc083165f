"""Storage (EnergyTag's storage rules): the certificates of the energy that charged a
battery are cancelled into it ("stored", final, no claim), and what it discharges is
issued as storage certificates that carry the origin of what charged them.

Like `reservation.py`, these are building blocks for a higher app's service (the
contracts app's storage balancing): call them inside your own `transaction.atomic()`;
they append NO ledger event. Your one event names `subjects` and carries `data()` as
unit changes ("store", "issue") that `certificates.replay` follows through the
`certificates.replay_unit_event_sources` hook.

Locks (`certificates.locks`): the charging bundles first (pk order), then the battery's
unit counter (its issuance lock), then the receiving account (FOR KEY SHARE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction

from accounts.models import Account
from certificates import errors, events, locks, storage
from certificates.allocation import expiry_date
from certificates.events import Move
from certificates.models import Bundle, Issuance, IssuanceRequest, StorageOrigin
from certificates.services.common import Actor, Mandate, _apply_moves, _lock_sources
from certificates.services.issuance import (
    _device_for_issuance,
    _overlapping_periods,
    device_attributes,
)

STORE = "store"
ISSUE = "issue"


@dataclass(frozen=True)
class OriginPiece:
    """`volume_wh` of a discharge hour that came from one cancelled (stored) bundle."""

    volume_wh: int
    charged_bundle_id: int
    origin_device_id: int
    technology_code: str
    energy_source_code: str
    period_start: dt.datetime
    period_end: dt.datetime
    charged_at: dt.datetime

    def data(self) -> dict[str, Any]:
        return {
            "volume_wh": self.volume_wh,
            "charged_bundle_id": self.charged_bundle_id,
            "origin_device_id": self.origin_device_id,
            "technology_code": self.technology_code,
            "energy_source_code": self.energy_source_code,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "charged_at": self.charged_at,
        }


@dataclass
class StorageChanges:
    """What the storage functions changed, for the caller's one ledger event."""

    subjects: list[Any] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    stored_wh: int = 0
    issued_wh: int = 0
    issuance: Issuance | None = None

    def data(self) -> list[dict[str, Any]]:
        return self.changes


def _require_transaction(action: str) -> None:
    if not connection.in_atomic_block:
        raise errors.UnitsChangeOutsideTransaction(action=action)


def _mark_readings(device_id: int, reading_ids: Sequence[int], now: dt.datetime) -> None:
    from assets.services import readings_mark_issued

    if not reading_ids:
        return
    marked = readings_mark_issued(reading_ids=list(reading_ids), at=now)
    if marked != len(set(reading_ids)):
        raise errors.DoubleIssuance(device_id=device_id, reason="readings changed meanwhile")


def certificate_units_store(
    *,
    actor: Actor,
    items: Sequence[tuple[int, int]],
    mandate: Mandate,
    now: dt.datetime,
    into: StorageChanges,
) -> list[Move]:
    """Cancel the first `volume` units of each bundle into storage (status stored, same
    account): the charge side of EnergyTag's storage rules. No event: the caller's."""
    _require_transaction(STORE)
    if not items:
        return []
    sources = _lock_sources(actor=actor, items=items, now=now, mandate=mandate, leaving=False)
    moves = [
        Move(
            bundle=source.bundle,
            volume_wh=source.volume_wh,
            account_id=source.account.pk,
            status=Bundle.Status.STORED,
            from_account=source.account,
        )
        for source in sources
    ]
    _apply_moves(moves)
    for move in moves:
        into.subjects += [*move.bundles(), ("account", move.account_id)]
        into.changes.append({"action": STORE, "account_id": move.account_id, **move.data()})
        into.stored_wh += move.volume_wh
    return moves


def certificate_storage_issue(
    *,
    actor: Actor,
    device_id: int,
    account_id: int,
    periods: Sequence[tuple[dt.datetime, dt.datetime, Sequence[OriginPiece]]],
    efficiency_ppm: int,
    reading_ids: Sequence[int],
    now: dt.datetime,
    into: StorageChanges,
) -> Issuance | None:
    """Issue storage certificates for a battery's discharge hours, one bundle per (hour,
    origin), into `account_id`; record each bundle's origin (`StorageOrigin`) and mark the
    discharge readings issued (also when nothing is certified). No event: the caller's (an
    "issue" change)."""
    _require_transaction(ISSUE)
    periods = [(s, e, pieces) for s, e, pieces in periods if sum(p.volume_wh for p in pieces)]
    if not periods:
        # Nothing certified (the discharge came from uncertified charge): its readings are
        # still spent, so the battery's ordinary issuance cannot certify them.
        _mark_readings(device_id, reading_ids, now)
        if reading_ids:
            into.subjects.append(("device", device_id))
        return None
    device = _device_for_issuance(device_id)
    if not device.is_storage:
        raise errors.DeviceCannotIssue(device_id=device_id, reason="not a storage device")
    counter = locks.unit_counter_lock(device_id)
    clash = _overlapping_periods(device_id, [(s, e, 0, []) for s, e, _p in periods])
    if clash:
        raise errors.DoubleIssuance(
            device_id=device_id, period_starts=sorted(c.isoformat() for c in clash)[:10]
        )
    account, _policy = locks.account_lock_receiving(account_id)
    if account.kind == Account.Kind.RETIREMENT:  # never: receiving accounts are trading
        raise errors.AccountRefusesIssuance(device_id=device_id, account_ids=[account_id])
    grid = device.grid_area
    months = getattr(grid, "expiry_months", None) or None
    unit = counter.next_unit
    total = sum(p.volume_wh for _s, _e, pieces in periods for p in pieces)
    issuance = Issuance.objects.create(
        device_id=device_id,
        issued_at=now,
        granularity=IssuanceRequest.Granularity.HOUR,
        period_start=periods[0][0],
        period_end=periods[-1][1],
        unit_start=unit,
        unit_end=unit + total,
        volume_wh=total,
        **device_attributes(device, grid),
        emission_factor_g_per_kwh=getattr(grid, "emission_factor_g_per_kwh", None),
        is_storage=True,
        expiry_months=months,
    )
    period_rows: list[list[Any]] = []
    bundle_rows: list[list[Any]] = []
    origins: list[StorageOrigin] = []
    for p_start, p_end, pieces in periods:
        in_period: list[list[Any]] = []
        wh = sum(p.volume_wh for p in pieces)
        period_rows.append([p_start, p_end, unit, unit + wh, in_period])
        for piece in pieces:
            if not piece.volume_wh:
                continue
            end = unit + piece.volume_wh
            in_period.append([None, account.pk, unit, end])
            bundle_rows.append(
                [
                    device_id,
                    issuance.pk,
                    account.pk,
                    None,
                    unit,
                    end,
                    p_start,
                    p_end,
                    expiry_date(p_end, months),
                    Bundle.Status.ACTIVE,
                ]
            )
            origins.append(
                StorageOrigin(
                    issuance=issuance,
                    device_id=device_id,
                    unit_start=unit,
                    unit_end=end,
                    charged_bundle_id=piece.charged_bundle_id,
                    origin_device_id=piece.origin_device_id,
                    origin_technology_code=piece.technology_code,
                    origin_energy_source_code=piece.energy_source_code,
                    origin_period_start=piece.period_start,
                    origin_period_end=piece.period_end,
                    charged_at=piece.charged_at,
                    efficiency_ppm=efficiency_ppm,
                )
            )
            unit = end
    try:
        with transaction.atomic():
            storage.issued_periods_insert(
                [[device_id, issuance.pk, p[0], p[1], p[2], p[3]] for p in period_rows]
            )
    except IntegrityError:
        raise errors.DoubleIssuance(device_id=device_id) from None
    bundle_ids = iter(storage.bundle_rows_insert(bundle_rows))
    for period in period_rows:
        for row in period[4]:
            row[0] = next(bundle_ids)
    StorageOrigin.objects.bulk_create(origins)
    _mark_readings(device_id, reading_ids, now)
    counter.next_unit = unit
    counter.save(update_fields=["next_unit"])
    rows = [row for period in period_rows for row in period[4]]
    into.subjects += [
        ("device", device_id),
        issuance,
        *(("bundle", row[0]) for row in rows),
        ("account", account.pk),
    ]
    data = events.issuance_data(issuance, period_rows)
    data["storage_origins"] = [
        [o.unit_start, o.unit_end, o.charged_bundle_id, o.origin_device_id] for o in origins
    ]
    data["efficiency_ppm"] = efficiency_ppm
    into.changes.append({"action": ISSUE, "issuance": data})
    into.issued_wh += total
    into.issuance = issuance
    return issuance
