"""Pay now in a real browser: the household pays a charging bill and the buyer a PPA
payment left open for want of funds (htmx swaps the table and the messages). Same
browser fixtures as tests/web/test_browser.py (that module is at its size limit)."""

import pytest

from charging.models import Bill
from contracts.models import SettlementObligation
from tests.contracts.conftest import world as ppa_world  # noqa: F401 (the PPA world fixture)
from tests.market.factories import deposit
from tests.market.test_payments import run_ppa
from tests.web.payments_world import household_bill
from tests.web.test_browser import CHROMIUM, browser, log_in, watched  # noqa: F401
from tests.web.world import build_web_world

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed: run `make browser` (Debian's chromium package)",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_household_pays_an_open_charging_bill_now(watched):  # noqa: F811
    # given a bill left open (no money when it was billed)
    world = build_web_world()
    bill = household_bill(world)
    log_in(watched, "household")
    page = watched.page
    bills = page.inner_text("#bills")
    assert "open" in bills and "insufficient funds" in bills

    # when the household presses Pay now without money: refused, still open
    page.click("#bills button:has-text('Pay now')")
    page.wait_for_selector("#messages:has-text('insufficient_funds')")
    assert "insufficient funds" in page.inner_text("#bills")

    # and again after a deposit
    deposit(world.household.organisation_id, 10_000)
    page.click("#bills button:has-text('Pay now')")
    page.wait_for_selector(f"#messages:has-text('Bill {bill.pk} paid.')")

    # then the row says settled, the button is gone, the bill is settled
    assert "settled" in page.inner_text("#bills")
    assert page.query_selector("#bills button:has-text('Pay now')") is None
    assert Bill.objects.get(pk=bill.pk).settlement == Bill.Settlement.SETTLED
    assert watched.axe_violations() == []
    watched.screenshot("journey-household-pay-bill")


def test_buyer_pays_an_open_contract_payment_from_the_holdings_page(watched, ppa_world):  # noqa: F811
    # given a PPA obligation the buyer could not pay when it executed, then the money
    _execution, obligation = run_ppa(ppa_world)
    assert obligation.reason_code == "insufficient_funds"
    deposit(ppa_world.buyer_account.organisation_id, 100)
    log_in(watched, ppa_world.buyer.username)
    page = watched.page
    watched.open("/holdings/")
    assert "insufficient funds" in page.inner_text("#obligations")

    # when the buyer presses Pay now
    page.click("#obligations button:has-text('Pay now')")
    page.wait_for_selector(f"#messages:has-text('Payment {obligation.pk} made.')")

    # then
    assert "settled" in page.inner_text("#obligations")
    assert page.query_selector("#obligations button:has-text('Pay now')") is None
    assert SettlementObligation.objects.get(pk=obligation.pk).status == "settled"
    assert watched.axe_violations() == []
    watched.screenshot("journey-buyer-pay-obligation")
