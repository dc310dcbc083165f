"""Numbers and energy in the reader's locale: `{{ value|energy }}` -> "1 234,5 kWh" in Russian."""

from django import template
from django.utils import formats
from django.utils.translation import gettext as _

register = template.Library()

_UNITS = ((10**9, "GWh"), (10**6, "MWh"), (10**3, "kWh"))


def _number(value: float, places: int) -> str:
    return formats.number_format(value, places, use_l10n=True, force_grouping=True)


@register.filter
def energy(wh) -> str:
    """Wh as Wh, kWh, MWh or GWh, with the locale's separators and unit names."""
    if wh in (None, ""):
        return "—"
    wh = int(wh)
    for size, unit in _UNITS:
        if abs(wh) >= size:
            return f"{_number(wh / size, 1)} {_(unit)}"
    return f"{_number(wh, 0)} {_('Wh')}"


@register.filter
def grouped(value) -> str:
    """An integer with the locale's thousands separator."""
    if value in (None, ""):
        return "—"
    return _number(int(value), 0)


@register.filter
def power(watts) -> str:
    """Capacity in kW or MW."""
    if watts in (None, ""):
        return "—"
    watts = int(watts)
    if abs(watts) >= 10**6:
        return f"{_number(watts / 10**6, 2)} {_('MW')}"
    return f"{_number(watts / 10**3, 1)} {_('kW')}"


@register.filter
def kilograms(grams) -> str:
    """Grams as kilograms with one decimal, in the locale's format (the unit is the text's)."""
    if grams in (None, ""):
        return "—"
    return _number(int(grams) / 1000, 1)
