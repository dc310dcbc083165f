"""EECS code lists (AIB EECS Rules, Fact Sheet 5), shipped in assets/data/eecs_codes.json."""

import json
from functools import cache
from pathlib import Path

CODES_FILE = Path(__file__).resolve().parent / "data" / "eecs_codes.json"


@cache
def _codes() -> dict:
    return json.loads(CODES_FILE.read_text(encoding="utf-8"))


@cache
def technologies() -> dict[str, str]:
    """Technology code -> label, e.g. "T010101" -> "Solar - Photovoltaic - Classic silicon"."""
    return {item["code"]: item["label"] for item in _codes()["technologies"]}


@cache
def energy_sources() -> dict[str, str]:
    """Energy-source code -> label, e.g. "F01050100" -> "Renewable - ... - Wind - Unspecified"."""
    return {item["code"]: item["label"] for item in _codes()["energy_sources"]}


def combination_allowed(technology_code: str, energy_source_code: str) -> bool:
    """Whether the fact sheet permits this energy source with this technology (electricity)."""
    prefixes = _codes()["combinations"]["prefixes"].get(technology_code[:3], [])
    return any(energy_source_code.startswith(prefix) for prefix in prefixes)


def is_solar(technology_code: str) -> bool:
    return technology_code.startswith("T01")


def is_wind(technology_code: str) -> bool:
    return technology_code.startswith("T02")
