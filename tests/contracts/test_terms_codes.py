"""Countries and currencies in contract terms and tariffs are checked against the lists
the registry maintains (registry.countries), as every other country and currency field
is: found by hand (2026-12-07), a standing retirement for "ZZ" was drafted and agreed and
then failed at every execution, where the retirement service refuses that country."""

import pytest

from charging import errors as charging_errors
from charging import tariffs
from contracts.api.terms_schema import TERMS_SCHEMAS
from contracts.errors import InvalidTerms
from contracts.kinds.base import TermsReader
from registry.countries import CURRENCY_CHOICES, currency_code_valid

ELEMENT = [{"price_components": [{"type": "ENERGY", "price": "0.30", "step_size": 1}]}]


@pytest.mark.parametrize(
    ("code", "valid"),
    [("EUR", True), ("XOF", True), ("CHF", True), ("ZZZ", False), ("eur", False),
     ("XXX", False), ("XTS", False), ("XAU", False), (None, False)],
)  # fmt: skip
def test_a_currency_is_one_a_price_is_paid_in(code, valid):
    assert currency_code_valid(code) is valid
    assert (code in CURRENCY_CHOICES) is valid


@pytest.mark.parametrize(
    ("method", "name", "value", "valid"),
    [
        ("country", "beneficiary_country", "DE", True),
        ("country", "beneficiary_country", "ZZ", False),
        ("country", "beneficiary_country", " DE", False),
        ("currency", "currency", "EUR", True),
        ("currency", "currency", "ZZZ", False),
        ("currency", "currency", "XXX", False),
    ],
)
def test_terms_take_assigned_codes_only(method, name, value, valid):
    read = getattr(TermsReader({name: value}, {name}), method)
    if valid:
        assert read(name) == value
    else:
        with pytest.raises(InvalidTerms) as refused:
            read(name)
        assert name in refused.value.extra["fields"]


def test_the_terms_schema_lists_the_same_codes():
    found = {
        name: prop
        for schema in TERMS_SCHEMAS.values()
        for name, prop in schema.get("properties", {}).items()
        if name in {"currency", "beneficiary_country"}
    }
    assert found["currency"]["enum"] == CURRENCY_CHOICES
    assert "ZZ" not in found["beneficiary_country"]["enum"]
    assert "DE" in found["beneficiary_country"]["enum"]


@pytest.mark.parametrize("currency", ["ZZZ", "XXX"])
def test_a_tariff_in_no_currency_is_refused(currency):
    assert tariffs.tariff_elements_clean(ELEMENT, "EUR")
    with pytest.raises(charging_errors.InvalidTariff):
        tariffs.tariff_elements_clean(ELEMENT, currency)
