"""A final newline is not part of a pattern's match.

Python's `$` also matches just before a final "\\n"; the schema's patterns are ECMA-262,
where it does not. So `PATTERN.match("DE...\\n")` took text the schema refuses (found
with the date-times: `?period_start=2026-01-01T00:00:00Z%0A` was answered 200). Every
check of a published pattern uses `fullmatch`."""

import pytest

from assets.validation import eic_problem
from charging import errors as charging_errors
from charging import tariffs
from consumers.metering_point import metering_point_problem, metering_point_with_check
from contracts.errors import InvalidTerms
from contracts.kinds.base import TermsReader
from market import errors as market_errors
from market.services import market_create
from tests.factories import issuing_body_user

VALID_EIC = "10YDE-VE-------2"


def test_an_eic_code_with_a_final_newline_is_refused():
    assert eic_problem(VALID_EIC) is None
    assert eic_problem(VALID_EIC + "\n") is not None


def test_a_metering_point_with_a_final_newline_is_refused():
    valid = metering_point_with_check("12345678901234567")
    assert metering_point_problem(valid) is None
    assert metering_point_problem(valid + "\n") is not None


def test_a_tariff_currency_with_a_final_newline_is_refused():
    element = {"price_components": [{"type": "ENERGY", "price": "0.30", "step_size": 1}]}
    assert tariffs.tariff_elements_clean([element], "EUR")
    with pytest.raises(charging_errors.InvalidTariff):
        tariffs.tariff_elements_clean([element], "EUR\n")


def test_a_terms_currency_with_a_final_newline_is_refused():
    assert TermsReader({"currency": "EUR"}, {"currency"}).currency("currency") == "EUR"
    with pytest.raises(InvalidTerms):
        TermsReader({"currency": "EUR\n"}, {"currency"}).currency("currency")


@pytest.mark.django_db
def test_a_market_code_with_a_final_newline_is_refused():
    with pytest.raises(market_errors.InvalidOrder):
        market_create(
            actor=issuing_body_user(),
            code="certs-x\n",
            name="x",
            currency="EUR",
            operator_id=1,
            price_min=0,
            price_max=1,
        )


@pytest.mark.django_db
def test_a_request_id_with_a_final_newline_is_replaced(client):
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="abc-1")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="abc-1\n")
    assert kept["X-Request-ID"] == "abc-1"
    assert replaced["X-Request-ID"] != "abc-1\n" and "\n" not in replaced["X-Request-ID"]
