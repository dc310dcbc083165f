"""Pay now in a real browser: the household pays a charging bill left open for want of
funds (htmx swaps the bills table and the messages). Same browser fixtures as
tests/web/test_browser.py (that module is at its size limit)."""

import pytest

from charging.models import Bill
from tests.market.factories import deposit
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
