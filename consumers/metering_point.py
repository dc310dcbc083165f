"""Metering-point identifiers: 18 digits (EAN-18 / GSRN) ending in a GS1 check digit."""

import re

_DIGITS = re.compile(r"^[0-9]{18}$")


def gs1_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of a digit string: weights 3, 1, 3, … from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def metering_point_problem(value: object) -> str | None:
    """Why `value` is not a valid 18-digit metering-point id, or None when it is."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        return "18 digits (EAN-18 / GSRN)."
    if gs1_check_digit(value[:17]) != int(value[17]):
        return f"The check digit should be {gs1_check_digit(value[:17])}."
    return None


def metering_point_with_check(body: str) -> str:
    """A 17-digit body completed with its check digit (demo data, tests)."""
    return body + str(gs1_check_digit(body))
