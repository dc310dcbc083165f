"""Bulk onboarding by the issuing body: devices and their meters from a CSV file.

Each row is one device with one meter. The rows go through the same checks and writes as
`device_register` and `meter_register` (`device_create`, `meter_create`), each in its own
savepoint inside one transaction, so every row's refusal is collected. A dry run, or a
file with any refused row, is rolled back whole: nothing is written, no ledger event. A
clean file commits every device and meter with its `device.registered` and
`meter.registered` events. The devices are drafts of the producer named in the row, owned
wholly by its account; the producer submits them as it would a device of its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from accounts.models import Account, User
from assets import errors, locks
from assets.models import Device, GridArea, Meter
from assets.services.common import MAX_SAFE_INTEGER, _invalid, _require_issuing_body
from assets.services.devices import device_create
from assets.services.meters import meter_create
from registry.errors import DomainError, InvalidInput

MAX_ROWS = 1000
_DATE = re.compile(r"[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}")  # as every date the API takes
REQUIRED_COLUMNS = (
    "organisation_id",
    "account_number",
    "name",
    "grid_area",
    "technology_code",
    "energy_source_code",
    "capacity_kw",
    "commissioning_date",
    "latitude",
    "longitude",
    "meter_serial",
)
OPTIONAL_COLUMNS = ("issuance_policy", "meter_kind", "meter_public_key")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


@dataclass
class OnboardingRow:
    """One row's outcome: its line in the file and either what it made or why not."""

    line: int
    name: str
    serial: str
    device: Device | None = None
    meter: Meter | None = None
    code: str = ""
    detail: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Onboarding:
    dry_run: bool
    rows: list[OnboardingRow] = field(default_factory=list)

    @property
    def refused(self) -> list[OnboardingRow]:
        return [row for row in self.rows if row.code]


class _RollBack(Exception):
    """Leaves the transaction without writing (a dry run, or any refused row)."""


def _parse(text: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown:
        problems = {}
        if missing:
            problems["columns"] = [f"Missing: {', '.join(missing)}."]
        if unknown:
            problems.setdefault("columns", []).append(f"Unknown: {', '.join(unknown)}.")
        raise errors.OnboardingFileInvalid(
            f"columns: {' '.join(problems['columns'])}",
            fields=problems,
            choices={"columns": list(COLUMNS)},
        )
    reader.fieldnames = header
    rows = []
    for record in reader:
        if None in record:
            rows.append((reader.line_num, {"_extra": "1"}))
            continue
        values = {k: (v or "").strip() for k, v in record.items()}
        if any(values.values()):
            rows.append((reader.line_num, values))
        if len(rows) > MAX_ROWS:
            raise errors.OnboardingFileInvalid(
                f"At most {MAX_ROWS} rows in one file.", fields={"file": []}
            )
    if not rows:
        raise errors.OnboardingFileInvalid("The file has no rows.", fields={"file": ["No rows."]})
    return rows


def _int(value: str) -> int | None:
    """A positive id that fits a database integer, else None."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 < number <= MAX_SAFE_INTEGER else None


def _decimal(value: str) -> Decimal | None:
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _arguments(values: dict[str, str], organisations, areas, accounts) -> dict[str, Any]:
    """The row as device_create's arguments; InvalidInput naming every bad cell."""
    if "_extra" in values:
        raise InvalidInput("The row has more cells than the header.", fields={"row": []})
    problems: dict[str, list[str]] = {}
    organisation = organisations.get(_int(values["organisation_id"]))
    if organisation is None:
        problems["organisation_id"] = ["No such organisation."]
    account = accounts.get(values["account_number"])
    if account is None:
        problems["account_number"] = ["No such account."]
    area = areas.get(values["grid_area"])
    if area is None:
        problems["grid_area"] = ["No such grid area (give its code)."]
    capacity = _decimal(values["capacity_kw"])
    if capacity is None or not 0 <= capacity <= MAX_SAFE_INTEGER // 1000:
        problems["capacity_kw"] = ["A number of kW."]
    try:  # fromisoformat also takes 20240101, 2024-W01-1 and year 1
        if not _DATE.fullmatch(values["commissioning_date"]):
            raise ValueError
        commissioned = dt.date.fromisoformat(values["commissioning_date"])
    except ValueError:
        commissioned = None
        problems["commissioning_date"] = ["A date as YYYY-MM-DD (years 1000-8999)."]
    latitude, longitude = _decimal(values["latitude"]), _decimal(values["longitude"])
    for name, number in (("latitude", latitude), ("longitude", longitude)):
        if number is None:
            problems[name] = ["A number of degrees."]
    if problems:
        raise _invalid(problems)
    return {
        "organisation": organisation,
        "name": values["name"],
        "grid_area_id": area.pk,
        "technology_code": values["technology_code"],
        "energy_source_code": values["energy_source_code"],
        "capacity_w": int(capacity * 1000),
        "commissioning_date": commissioned,
        "latitude": latitude,
        "longitude": longitude,
        "issuance_policy": values.get("issuance_policy") or Device.IssuancePolicy.MANUAL,
        "owners": [{"organisation_id": organisation.pk, "account_id": account.pk, "share": "1"}],
    }


def devices_onboard(*, actor: User, csv_text: str, dry_run: bool) -> Onboarding:
    """Register every row's device and meter, or none: OnboardingRejected lists each
    refused row (its line, code, detail and fields). A dry run returns the same outcome
    per row and writes nothing."""
    _require_issuing_body(actor)
    rows = _parse(csv_text)
    outcome = Onboarding(dry_run=dry_run)
    try:
        with transaction.atomic():
            ids = sorted({i for _, v in rows if (i := _int(v.get("organisation_id", "")))})
            organisations = {pk: o for pk in ids if (o := locks.organisation_lock(pk))}
            areas = {
                a.code: a
                for a in GridArea.objects.filter(code__in={v.get("grid_area") for _, v in rows})
            }
            numbers = {v.get("account_number") for _, v in rows}
            accounts = {a.number: a for a in Account.objects.filter(number__in=numbers)}
            for line, values in rows:
                row = OnboardingRow(line, values.get("name", ""), values.get("meter_serial", ""))
                outcome.rows.append(row)
                try:
                    with transaction.atomic():  # a refused row leaves nothing behind
                        arguments = _arguments(values, organisations, areas, accounts)
                        row.device = device_create(actor=actor, **arguments)
                        row.meter = meter_create(
                            actor=actor,
                            device=row.device,
                            serial=values["meter_serial"],
                            kind=values.get("meter_kind") or Meter.Kind.GENERATION,
                            public_key=values.get("meter_public_key") or None,
                        )
                except DomainError as error:
                    row.device = row.meter = None
                    row.code, row.detail = error.code, error.detail
                    row.fields = error.extra.get("fields") or {}
            if dry_run or outcome.refused:
                raise _RollBack
    except _RollBack:
        for row in outcome.rows:
            row.device = row.meter = None
    if outcome.refused and not dry_run:
        raise errors.OnboardingRejected(
            rows=[
                {"line": r.line, "code": r.code, "detail": r.detail, "fields": r.fields}
                for r in outcome.refused
            ]
        )
    return outcome
