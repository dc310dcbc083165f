"""What every contract kind provides: validated terms, its parties, its trigger, a plan
(reads only) and the application of a plan (writes through the certificates services)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Account
from contracts.errors import InvalidTerms, TermsUnmet
from registry.countries import country_code_valid, currency_code_valid

MAX_SHARE_BP = 10_000
MAX_PRICE_PER_MWH_MINOR = 100_000_000  # 1,000,000.00 a MWh in a two-decimal currency


@dataclass(frozen=True)
class Validated:
    """Terms after validation, and what the registry derives from them."""

    terms: dict[str, Any]
    parties: list[tuple[int, str]]  # (organisation id, role), in role order
    source_account_id: int | None = None
    device_id: int | None = None
    share_bp: int | None = None


@dataclass
class Plan:
    """What an execution does: JSON-able, compared when a trigger is re-run."""

    trigger: str
    summary: dict[str, Any]
    # Certificates work: (to account id, [(bundle id, volume)]) moves, or retirement items.
    transfers: list[tuple[int, list[tuple[int, int]]]] = field(default_factory=list)
    retirements: list[tuple[int, int]] = field(default_factory=list)
    # Retirements matched hour by hour: (hour start, items), each retired for its hour.
    hourly_retirements: list[tuple[dt.datetime, list[tuple[int, int]]]] = field(
        default_factory=list
    )
    obligation: dict[str, Any] | None = None
    shortfall: dict[str, Any] | None = None  # set when the sources do not cover the plan
    refusal: Any = None  # a DomainError the execution fails with (storage balancing)
    storage: Any = None  # a storage.StoragePlan (storage balancing)
    community: Any = None  # (community id, start, end) to distribute (community sharing)
    # What the application changed, for the execution's one event (filled by apply).
    subjects: list[Any] = field(default_factory=list)


class TermsReader:
    """Reads one terms mapping field by field and says exactly what is wrong."""

    def __init__(self, terms: Any, allowed: set[str]) -> None:
        if not isinstance(terms, dict):
            raise InvalidTerms("Terms must be a JSON object.")
        unknown = sorted(set(terms) - allowed)
        if unknown:
            raise InvalidTerms(fields={name: ["unknown field"] for name in unknown})
        try:  # a lone surrogate ("\ud800") is valid JSON but no UTF-8: the ledger cannot hash it
            json.dumps(terms, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidTerms("Terms must be Unicode text without lone surrogates.") from None
        self.terms = terms

    def integer(self, name: str, low: int, high: int, *, required: bool = True) -> int | None:
        value = self.terms.get(name)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidTerms(fields={name: [f"a whole number from {low} to {high}"]})
        return value

    def text(self, name: str, *, required: bool = True) -> str:
        value = self.terms.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise InvalidTerms(fields={name: ["required text (at most 200 characters)"]})
        return value.strip()

    def country(self, name: str) -> str:
        """An assigned ISO 3166-1 alpha-2 code, as given ("DE"; not "ZZ", "de" or " DE")."""
        return self._code(name, country_code_valid, "an ISO 3166-1 alpha-2 country code, e.g. DE")

    def currency(self, name: str) -> str:
        """An ISO 4217 code a price is paid in, as given ("EUR"; not "ZZZ" or "XXX")."""
        return self._code(name, currency_code_valid, "an ISO 4217 currency code, e.g. EUR")

    def _code(self, name: str, valid: Callable[[object], bool], expected: str) -> str:
        value = self.text(name)
        if not valid(self.terms[name]):  # the raw value: text() strips it
            raise InvalidTerms(fields={name: [expected]})
        return value

    def account(self, name: str) -> Account:
        number = self.text(name)
        account = Account.objects.filter(number=number).select_related("organisation").first()
        if account is None:
            raise TermsUnmet(fields={name: ["no such account"]})
        if not account.is_open:
            raise TermsUnmet(fields={name: ["the account is closed"]})
        return account


def month_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    """`YYYY-MM` -> [first instant, first instant of the next month) in UTC; years
    1000-8999 in ASCII digits, as every date the API takes (registry.datetimes)."""
    match = re.fullmatch(r"([1-8][0-9]{3})-([0-9]{2})", period or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise InvalidTerms("A period is a month, YYYY-MM.", fields={"period": ["YYYY-MM"]})
    year, month = int(match.group(1)), int(match.group(2))
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


def previous_month(now: dt.datetime) -> str:
    first = now.astimezone(dt.UTC).date().replace(day=1)
    last = first - dt.timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"
