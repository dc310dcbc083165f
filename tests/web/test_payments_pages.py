"""Settlement status and "Pay now" on the household page (charging bills) and the holdings
page (contract payments owed): the same services as the API, fixed query counts, Russian."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from charging.models import Bill
from contracts.models import SettlementObligation
from market.models import JournalEntry
from tests.contracts.conftest import world as ppa_world  # noqa: F401 (the PPA world fixture)
from tests.market.factories import deposit
from tests.market.test_payments import run_ppa
from tests.web.payments_world import household_bill
from tests.web.world import build_web_world

pytestmark = pytest.mark.django_db


def test_the_household_sees_an_open_bill_with_its_reason_and_pays_it(client):
    # given a bill billed while the household had no money
    world = build_web_world()
    bill = household_bill(world)
    client.force_login(world.users["household"])
    page = client.get(reverse("web:household")).content.decode()
    assert "insufficient funds" in page and "Pay now" in page
    pay = reverse("web:bill-pay", args=[bill.pk])

    # when it pays without funds, then with funds
    short = client.post(pay, follow=True).content.decode()
    deposit(world.household.organisation_id, 10_000)
    paid = client.post(pay, follow=True).content.decode()

    # then the first is refused with its code and nothing paid, the second settles it
    assert "insufficient_funds" in short
    bill.refresh_from_db()
    entry = JournalEntry.objects.get(kind="bill_payment")
    assert bill.settlement_reference == f"journal_entry:{entry.pk}"
    assert f"Bill {bill.pk} paid." in paid
    assert "settled" in paid and "Pay now" not in paid


def test_someone_else_cannot_pay_the_households_bill(client):
    # given
    world = build_web_world()
    bill = household_bill(world)
    deposit(world.household.organisation_id, 10_000)
    client.force_login(world.users["buyer"])

    # when the buyer (no household) posts to it
    response = client.post(reverse("web:bill-pay", args=[bill.pk]))

    # then
    assert response.status_code == 403
    assert Bill.objects.get(pk=bill.pk).settlement == "pending"


def test_the_household_page_queries_do_not_grow_with_its_bills(client, django_assert_num_queries):
    # given one bill, measured
    world = build_web_world()
    household_bill(world)
    client.force_login(world.users["household"])
    with CaptureQueriesContext(connection) as one_bill:
        assert client.get(reverse("web:household")).status_code == 200

    # when there are four
    for i in range(3):
        household_bill(world, tx=f"WEB-{i + 2}", hour=4 + 2 * i)

    # then the same number of queries shows all four
    with django_assert_num_queries(len(one_bill.captured_queries)):
        response = client.get(reverse("web:household"))
    assert len(response.context["bills"]) == 4


def test_the_household_bills_speak_russian(client):
    world = build_web_world()
    household_bill(world)
    client.force_login(world.users["household"])
    client.cookies["django_language"] = "ru"
    page = client.get(reverse("web:household"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    for words in ("Мои счета за зарядку", "недостаточно средств", "Оплатить сейчас"):
        assert words in page


def test_the_buyer_pays_an_open_contract_payment_from_the_holdings_page(client, ppa_world):  # noqa: F811
    # given an open obligation of the buyer's organisation, then the money for it
    _execution, obligation = run_ppa(ppa_world)
    assert obligation.reason_code == "insufficient_funds"
    client.force_login(ppa_world.buyer)
    page = client.get(reverse("web:holdings")).content.decode()
    assert "insufficient funds" in page and "Pay now" in page
    deposit(ppa_world.buyer_account.organisation_id, 100)

    # when
    paid = client.post(
        reverse("web:obligation-pay", args=[obligation.pk]), follow=True
    ).content.decode()

    # then
    assert f"Payment {obligation.pk} made." in paid
    assert SettlementObligation.objects.get(pk=obligation.pk).status == "settled"
    assert "Pay now" not in paid
