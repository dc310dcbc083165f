"""Grid areas (bidding zones) and their policies: registered and edited by the issuing body."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts.models import User
from assets import errors, locks
from assets.models import (
    GridArea,
)
from assets.services.common import (
    _invalid,
    _require_issuing_body,
    _save_changes,
)
from assets.validation import (
    eic_problem,
    time_zone_problem,
)
from ledger.services import ledger_append
from registry.countries import country_code_valid


def grid_area_problems(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per-field problems of grid-area values (the admin form shows the same messages)."""
    problems: dict[str, list[str]] = {}
    if "code" in values and (problem := eic_problem(str(values["code"]))):
        problems["code"] = [problem]
    if "name" in values and not str(values["name"]).strip():
        problems["name"] = ["A name is required."]
    if "country" in values and not country_code_valid(values["country"]):
        problems["country"] = ["Give an ISO 3166-1 alpha-2 code such as 'DE'."]
    if "time_zone" in values and (problem := time_zone_problem(str(values["time_zone"]))):
        problems["time_zone"] = [problem]
    if "emission_factor_g_per_kwh" in values:
        factor = values["emission_factor_g_per_kwh"]
        if (
            not isinstance(factor, Decimal)
            or not factor.is_finite()
            or factor < 0
            or factor >= Decimal("1000000")
            or factor.as_tuple().exponent < -3
        ):
            problems["emission_factor_g_per_kwh"] = [
                "A decimal from 0 to 999999.999 gCO2e/kWh with at most 3 decimal places."
            ]
    if "expiry_months" in values:
        months = values["expiry_months"]
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 600:
            problems["expiry_months"] = ["A whole number of months from 1 to 600."]
    return problems


def _refuse(problems: dict[str, list[str]]) -> None:
    """400 `invalid`; `eic_check_invalid` when the one problem is the code's check character
    (a checksum, which the API schema's pattern for the code cannot state)."""
    if not problems:
        return
    if set(problems) == {"code"} and "check character" in problems["code"][0]:
        raise errors.EicCheckInvalid(fields=problems)
    raise _invalid(problems)


def _grid_area_data(area: GridArea) -> dict[str, Any]:
    return {
        "grid_area_id": area.pk,
        "code": area.code,
        "name": area.name,
        "country": area.country,
        "time_zone": area.time_zone,
        "emission_factor_g_per_kwh": area.emission_factor_g_per_kwh,
        "expiry_months": area.expiry_months,
    }


@transaction.atomic
def grid_area_create(
    *,
    actor: User,
    code: str,
    name: str,
    country: str,
    time_zone: str,
    emission_factor_g_per_kwh: Decimal,
    expiry_months: int = 12,
) -> GridArea:
    """The issuing body registers a grid area (bidding zone) with its policies."""
    _require_issuing_body(actor)
    values = {
        "code": code,
        "name": name,
        "country": country,
        "time_zone": time_zone,
        "emission_factor_g_per_kwh": emission_factor_g_per_kwh,
        "expiry_months": expiry_months,
    }
    _refuse(grid_area_problems(values))
    if GridArea.objects.filter(code=code).exists():
        raise errors.GridAreaExists(code=code)
    area = GridArea.objects.create(**values)
    ledger_append(kind="grid_area.created", actor=actor, subject=area, data=_grid_area_data(area))
    return area


GRID_AREA_EDITABLE = ("name", "time_zone", "emission_factor_g_per_kwh", "expiry_months")


@transaction.atomic
def grid_area_update(*, actor: User, grid_area_id: int, **changes: Any) -> GridArea:
    """The issuing body changes a grid area's name or policies (its code never changes)."""
    _require_issuing_body(actor)
    unknown = sorted(set(changes) - set(GRID_AREA_EDITABLE))
    if unknown:
        raise _invalid({name: ["This field cannot be changed."] for name in unknown})
    _refuse(grid_area_problems(changes))
    area = locks.grid_area_lock(grid_area_id)
    if area is None:
        raise errors.GridAreaNotFound(grid_area_id=grid_area_id)
    changed = _save_changes(area, changes)
    if not changed:
        return area
    ledger_append(
        kind="grid_area.updated",
        actor=actor,
        subject=area,
        data={"grid_area_id": area.pk, "code": area.code, "changes": changed},
    )
    return area
