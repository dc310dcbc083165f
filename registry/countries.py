"""ISO 3166-1 alpha-2 country codes, from the list pycountry maintains (not a regex)."""

from functools import cache

import pycountry


@cache
def country_codes() -> frozenset[str]:
    """Every officially assigned ISO 3166-1 alpha-2 code ("DE", "CH", …)."""
    return frozenset(country.alpha_2 for country in pycountry.countries)


def country_code_valid(code: object) -> bool:
    """True for an assigned ISO 3166-1 alpha-2 code in upper case ("ZZ" and "de" are not)."""
    return isinstance(code, str) and code in country_codes()


# The codes in order: the API's country fields are this enum (CountryEnum in the schema).
COUNTRY_CHOICES: list[str] = sorted(country_codes())
# ISO 4217 alphabetic currency codes, from the same maintained source.
CURRENCY_CHOICES: list[str] = sorted(currency.alpha_3 for currency in pycountry.currencies)
