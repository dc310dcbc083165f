"""The market's and the consumers' rules: a trade filled tells the buyer's and the seller's
members; a consent granted or revoked tells the household's and the grantee's members; each
comes by e-mail and to the organisations' webhooks like the other rules."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import formats, timezone, translation

from accounts.models import Membership
from consumers import services as consumer_services
from market import services as market_services
from notifications import webhooks
from notifications.models import Notification, Topic, WebhookDelivery
from notifications.services import notification_emails_send_pending
from notifications.texts import notification_body
from tests.consumers.factories import SiteFactory, site_meter
from tests.factories import OrganisationFactory, member_of
from tests.market.factories import MarketFactory, buyer_with_funds, seller_with_bundles
from tests.notifications.conftest import derive

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The texts below are English (a test before may have left Russian active)."""
    with translation.override("en"):
        yield


PRICE = 5_000  # minor units per MWh


def told(user) -> list[Notification]:
    return list(Notification.objects.filter(user=user).order_by("id"))


@pytest.fixture
def market_world():
    market = MarketFactory()
    seller = seller_with_bundles(wh=1_000)
    buyer = buyer_with_funds()
    derive()  # what setting up the world caused is not what these tests look at
    Notification.objects.all().delete()
    return market, seller, buyer


def offer(market, seller, quantity_wh: int, price: int = PRICE):
    return market_services.order_place(
        actor=seller.user,
        market_id=market.pk,
        side="sell",
        limit_price=price,
        bundle_id=seller.bundles[0].pk,
        quantity_wh=quantity_wh,
    )


def bid(market, buyer, quantity_wh: int, price: int = PRICE):
    return market_services.order_place(
        actor=buyer.user,
        market_id=market.pk,
        side="buy",
        limit_price=price,
        quantity_wh=quantity_wh,
        account_id=buyer.account.pk,
    )


def test_a_trade_tells_the_buyers_and_the_sellers_members(market_world):
    # given a resting offer of 600 Wh, and a viewer of the buyer
    market, seller, buyer = market_world
    resting = offer(market, seller, 600).order
    viewer = member_of(buyer.account.organisation, role=Membership.Role.VIEWER)
    derive()
    assert Notification.objects.count() == 0  # an order that rests fills nothing
    # when the buyer's bid takes it
    taking = bid(market, buyer, 600)
    derive()
    # then both sides' members are told (nobody must act), each with their own side
    (trade,) = taking.trades
    for user, side, order_id in (
        (buyer.user, "buy", taking.order.pk),
        (viewer, "buy", taking.order.pk),
        (seller.user, "sell", resting.pk),
    ):
        (notification,) = told(user)
        assert notification.topic == Topic.TRADE_FILLED and not notification.action_required
        assert notification.subject == f"trade:{trade.pk}"
        assert notification.params["side"] == side
        assert notification.params["order_id"] == order_id
        assert notification.params["volume_wh"] == 600
        assert notification.params["market"] == market.code
    assert notification_body(Topic.TRADE_FILLED, told(buyer.user)[0].params) == (
        f"Trade {trade.pk} in market {market.code}: you bought 0.6 kWh at 5,000 per MWh, "
        f"3 in all (minor units of EUR); your order {taking.order.pk}."
    )


def test_an_amended_order_that_crosses_tells_both_sides(market_world):
    # given an offer above a resting bid
    market, seller, buyer = market_world
    resting = bid(market, buyer, 500, price=PRICE).order
    high = offer(market, seller, 500, price=PRICE + 1_000).order
    derive()
    assert Notification.objects.count() == 0
    # when the seller lowers its price onto the bid
    market_services.order_amend(actor=seller.user, order_id=high.pk, limit_price=PRICE)
    derive()
    # then the trade tells both
    assert [n.params["side"] for n in told(seller.user)] == ["sell"]
    assert [n.params["order_id"] for n in told(buyer.user)] == [resting.pk]


def test_a_trade_reaches_the_organisations_webhook_and_mailbox(market_world, receiver):
    # given the buyer's admin registered a webhook for placed orders
    market, seller, buyer = market_world
    admin = member_of(buyer.account.organisation, role=Membership.Role.ADMIN)
    endpoint, _secret = webhooks.webhook_endpoint_register(
        organisation=buyer.account.organisation,
        url=receiver.url,
        kinds=["order.placed"],
        actor=admin,
    )
    offer(market, seller, 400)
    mail.outbox.clear()
    # when the buyer's bid fills
    bid(market, buyer, 400)
    derive()
    notification_emails_send_pending()
    # then one delivery of the event to the buyer's endpoint (the offer, which filled
    # nothing, was not sent), and an e-mail to each member told
    (delivery,) = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert delivery.kind == "order.placed"
    subjects = {message.subject for message in mail.outbox}
    assert subjects == {"[GridProof] Trade filled"}
    assert {message.to[0] for message in mail.outbox} >= {buyer.user.email, seller.user.email}


@pytest.fixture
def consent_world():
    site = SiteFactory()
    link = site_meter(site)
    supplier = OrganisationFactory(legal_name="Stadtwerke Sonnental", is_producer=False)
    reader = member_of(supplier, role=Membership.Role.VIEWER)
    derive()
    Notification.objects.all().delete()
    return site, link, supplier, reader


def grant(site, link, supplier):
    return consumer_services.consent_grant(
        actor=site.household.person,
        site_id=site.pk,
        grantee_id=supplier.pk,
        purpose="supply",
        site_meter_ids=[link.pk],
        resolution="daily",
        valid_to=timezone.now() + dt.timedelta(days=30),
    )


def test_a_granted_consent_tells_the_household_and_the_grantee(consent_world):
    # given a household's site and a supplier with a viewer
    site, link, supplier, reader = consent_world
    # when the household grants the supplier its site's daily data
    consent = grant(site, link, supplier)
    derive()
    # then both are told, each in their own words
    (household_notice,) = told(site.household.person)
    (grantee_notice,) = told(reader)
    for notice, role in ((household_notice, "household"), (grantee_notice, "grantee")):
        assert notice.topic == Topic.CONSENT_GRANTED and not notice.action_required
        assert notice.subject == f"consent:{consent.pk}"
        assert notice.params["role"] == role
        assert notice.params["site_id"] == site.pk
    until = formats.date_format(consent.valid_to.date(), "DATE_FORMAT")  # "Jan. 4, 2027"
    assert notification_body(Topic.CONSENT_GRANTED, household_notice.params) == (
        f"You granted Stadtwerke Sonnental consent {consent.pk} to read site {site.pk} "
        f"(daily data, for supply and billing) until {until}."
    )
    assert notification_body(Topic.CONSENT_GRANTED, grantee_notice.params).startswith(
        f"A household granted your organisation consent {consent.pk} to read site {site.pk}"
    )


def test_a_revoked_consent_tells_both_and_reaches_the_grantees_webhook(consent_world, receiver):
    # given a grant in force and the supplier's webhook for revocations
    site, link, supplier, reader = consent_world
    consent = grant(site, link, supplier)
    endpoint, _secret = webhooks.webhook_endpoint_register(
        organisation=supplier,
        url=receiver.url,
        kinds=["consent.revoked"],
        actor=member_of(supplier, role=Membership.Role.ADMIN),
    )
    derive()
    Notification.objects.all().delete()
    # when the household revokes it
    consumer_services.consent_revoke(actor=site.household.person, consent_id=consent.pk)
    derive()
    # then both are told, and the supplier's endpoint receives the event
    (household_notice,) = told(site.household.person)
    (grantee_notice,) = told(reader)
    assert household_notice.topic == grantee_notice.topic == Topic.CONSENT_REVOKED
    assert notification_body(Topic.CONSENT_REVOKED, household_notice.params) == (
        f"You revoked consent {consent.pk}: Stadtwerke Sonnental may no longer read site {site.pk}."
    )
    assert notification_body(Topic.CONSENT_REVOKED, grantee_notice.params) == (
        f"The household revoked consent {consent.pk}: your organisation may no longer read "
        f"site {site.pk}."
    )
    (delivery,) = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert delivery.kind == "consent.revoked"
