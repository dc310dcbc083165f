"""ISO 3166-1 alpha-2 country codes and ISO 4217 currency codes, from the lists pycountry
maintains (not a regex: "ZZ" and "ZZZ" have the right shape and name nothing)."""

from functools import cache

import pycountry


@cache
def country_codes() -> frozenset[str]:
    """Every officially assigned ISO 3166-1 alpha-2 code ("DE", "CH", …)."""
    return frozenset(country.alpha_2 for country in pycountry.countries)


def country_code_valid(code: object) -> bool:
    """True for an assigned ISO 3166-1 alpha-2 code in upper case ("ZZ" and "de" are not)."""
    return isinstance(code, str) and code in country_codes()


# ISO 4217 codes in which no price is paid: "no currency" (XXX), testing (XTS), precious
# metals (XAU, XAG, XPD, XPT) and bond-market units of account (XBA to XBD).
NOT_MONEY = frozenset({"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD"})


@cache
def currency_codes() -> frozenset[str]:
    """Every ISO 4217 alphabetic code a price can be given in ("EUR", "CHF", "XOF", …)."""
    return frozenset(currency.alpha_3 for currency in pycountry.currencies) - NOT_MONEY


def currency_code_valid(code: object) -> bool:
    """True for such a code in upper case ("ZZZ", "eur" and "XXX" are not)."""
    return isinstance(code, str) and code in currency_codes()


# The codes in order: the API's country and currency fields are these enums (CountryEnum
# and CurrencyEnum in the schema).
COUNTRY_CHOICES: list[str] = sorted(country_codes())
CURRENCY_CHOICES: list[str] = sorted(currency_codes())
