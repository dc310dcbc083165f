"""Each contract kind's terms as an OpenAPI schema: the shape its TermsReader checks
(contracts/kinds/), so that a request the schema allows is refused only for the
registry's data (`terms_unmet`: an account, device or community that does not exist or
does not fit, an end not after the start)."""

from typing import Any

from certificates.models import Retirement
from contracts.kinds.base import MAX_PRICE_PER_MWH_MINOR, MAX_SHARE_BP
from contracts.kinds.community import COMMUNITY_SHARING, GRANULARITIES
from contracts.kinds.retirement import STANDING_RETIREMENT
from contracts.kinds.shape import MAX_HOURLY_WH
from contracts.kinds.shares import PPA, PPA_SHAPED, STANDING_TRANSFER
from contracts.kinds.storage import PPM, STORAGE_BALANCING
from registry.countries import COUNTRY_CHOICES, CURRENCY_CHOICES
from registry.text_patterns import SPACE

MAX_ID = 2**53
# TermsReader.text: a non-blank text of at most 200 characters (NUL-free, as JSON storage
# wants it); an account is named by its number.
TEXT = {"type": "string", "maxLength": 200, "pattern": f"^[^\\x00]*[^{SPACE}\\x00][^\\x00]*$"}


def _integer(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


def _optional(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict:
    return {
        "type": "object",
        "properties": {**required, **{k: _optional(v) for k, v in (optional or {}).items()}},
        "required": sorted(required),
        "additionalProperties": False,
    }


_PRICE = MAX_PRICE_PER_MWH_MINOR
# contracts/kinds/pricing.py: the market's existence and currency, and a cap at least the
# floor, are the registry's data or a comparison (`terms_unmet`).
PRICE_INDEX = _object(
    {"market": TEXT},
    {
        "spread_per_mwh_minor": _integer(-_PRICE, _PRICE),
        "floor_per_mwh_minor": _integer(0, _PRICE),
        "cap_per_mwh_minor": _integer(0, _PRICE),
        "fallback_per_mwh_minor": _integer(0, _PRICE),
    },
)
# contracts/kinds/shape.py: exactly one of the two (24 hourly values not all 0: terms_unmet).
SHAPE = {
    "oneOf": [
        _object({"baseload_wh": _integer(1, MAX_HOURLY_WH)}),
        _object(
            {
                "hourly_wh": {
                    "type": "array",
                    "items": _integer(0, MAX_HOURLY_WH),
                    "minItems": 24,
                    "maxItems": 24,
                }
            }
        ),
    ]
}


def _ppa(volume: dict[str, Any]) -> dict[str, Any]:
    """A PPA's terms: a fixed price or a price index, exactly one."""
    schema = _object(
        {
            "device_id": _integer(1, MAX_ID),
            "seller_account": TEXT,
            "buyer_account": TEXT,
            **volume,
            "currency": {"type": "string", "enum": CURRENCY_CHOICES},
        }
    )
    schema["properties"].update(
        {"price_per_mwh_minor": _integer(0, _PRICE), "price_index": PRICE_INDEX}
    )
    schema["oneOf"] = [
        {"required": ["price_per_mwh_minor"], "not": {"required": ["price_index"]}},
        {"required": ["price_index"], "not": {"required": ["price_per_mwh_minor"]}},
    ]
    return schema


TERMS_SCHEMAS: dict[str, dict[str, Any]] = {
    PPA: _ppa({"share_bp": _integer(1, MAX_SHARE_BP)}),
    PPA_SHAPED: _ppa({"shape": SHAPE}),
    STANDING_TRANSFER: _object(
        {"from_account": TEXT, "to_account": TEXT, "share_bp": _integer(1, MAX_SHARE_BP)},
        {"device_id": _integer(1, MAX_ID)},
    ),
    STANDING_RETIREMENT: _object(
        {
            "account": TEXT,
            "purpose": {"type": "string", "enum": sorted(Retirement.Purpose.values)},
            "beneficiary_name": TEXT,
            "beneficiary_country": {"type": "string", "enum": COUNTRY_CHOICES},
        },
        {
            "location": TEXT,
            "max_wh_per_month": _integer(1, MAX_ID),
            "metering_point": {"type": "string", "pattern": f"^[{SPACE}]*[0-9]{{18}}[{SPACE}]*$"},
        },
    ),
    STORAGE_BALANCING: _object(
        {
            "device_id": _integer(1, MAX_ID),
            "charge_account": TEXT,
            "storage_account": TEXT,
            "efficiency_ppm": _integer(1, PPM),
            "capacity_wh": _integer(1, MAX_ID),
        }
    ),
    COMMUNITY_SHARING: {
        "type": "object",
        "properties": {
            "community_id": _integer(1, MAX_ID),
            "granularity": {"type": "string", "enum": sorted(GRANULARITIES)},
            # given back (an amendment), they must be the community's current ones
            "key_kind": {"nullable": True},
            "members": {"nullable": True},
        },
        "required": ["community_id"],
        "additionalProperties": False,
    },
}
