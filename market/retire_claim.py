"""Retire on delivery: an energy bid's claim, checked at placement (pure, no writes).

A bid in an energy-slot market may ask that the certificates delivered with its energy be
retired for that slot's consumption: `retire_on_delivery` names the beneficiary (name,
ISO 3166 country) and the purpose (a `Retirement.Purpose`); the consumption period is the
slot. The settlement retires them through the certificates app's retirement service
(`market/services/delivery_certificates.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from certificates.models import Retirement
from market import errors
from market.models import Order
from registry.countries import country_code_valid

CLAIM_FIELDS = ("beneficiary_name", "beneficiary_country", "purpose")


def retire_claim_set(order: Order, retire: Mapping[str, Any] | None, *, slot_market: bool) -> None:
    """Set the claim on the (unsaved) order, or raise: only energy bids; every field valid."""
    if retire is None:
        return
    if not slot_market or order.side != Order.Side.BUY:
        raise errors.RetireOnDeliveryNotAllowed(side=order.side)
    if not isinstance(retire, Mapping):
        raise errors.InvalidOrder(fields={"retire_on_delivery": ["an object"]})
    wrong: dict[str, list[str]] = {}
    unknown = sorted(set(retire) - set(CLAIM_FIELDS))
    if unknown:
        wrong["retire_on_delivery"] = [f"unknown field {name}" for name in unknown]
    name = retire.get("beneficiary_name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        wrong["retire_on_delivery.beneficiary_name"] = ["required, at most 200 characters"]
    country = retire.get("beneficiary_country")
    if not isinstance(country, str) or not country_code_valid(country):
        wrong["retire_on_delivery.beneficiary_country"] = ["ISO 3166 alpha-2"]
    purpose = retire.get("purpose")
    if purpose not in Retirement.Purpose.values:
        wrong["retire_on_delivery.purpose"] = sorted(Retirement.Purpose.values)
    if wrong:
        raise errors.InvalidOrder(fields=wrong)
    order.retire_on_delivery = True
    order.retire_beneficiary_name = name.strip()
    order.retire_beneficiary_country = country
    order.retire_purpose = purpose
