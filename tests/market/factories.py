"""Factories for the market suites: markets with their book, funded organisations, sellers
holding issued certificates. Rows made here skip the market services (they set up state);
money is added through the deposit service so that the journal stays balanced."""

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Account, User
from certificates import services as certificate_services
from certificates.models import Bundle
from market import services
from market.models import Market, OrderBook
from tests.certificates.factories import DAY, add_readings, device_with_owners, holder
from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user


class MarketFactory(DjangoModelFactory):
    class Meta:
        model = Market
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"certs-{n}")
    name = factory.Sequence(lambda n: f"Certificates {n}")
    currency = "EUR"
    operator = factory.SubFactory(OrganisationFactory, legal_name="Exchange Operator")
    fee_bps = 0
    price_min = 0
    price_max = 100_000  # EUR 1,000.00 per MWh
    created_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def book(market, create, extracted, **kwargs):
        if create:
            OrderBook.objects.get_or_create(market=market)


class EnergyMarketFactory(MarketFactory):
    """A local energy market: 15-minute slots, gate closure 5 minutes before each."""

    code = factory.Sequence(lambda n: f"energy-{n}")
    name = factory.Sequence(lambda n: f"Community energy {n}")
    kind = Market.Kind.ENERGY
    matching = Market.Matching.UNIFORM
    slot_minutes = 15
    gate_closure_minutes = 5


def next_slot(market: Market, *, ahead: dt.timedelta = dt.timedelta(days=1)) -> dt.datetime:
    """The first whole slot of `market` at least `ahead` from now."""
    length = market.slot_minutes * 60
    at = int((timezone.now() + ahead).timestamp())
    return dt.datetime.fromtimestamp(-(-at // length) * length, tz=dt.UTC)


def trader(amount_minor: int = 0) -> "Buyer":
    """A trading account of a new organisation (a prosumer or a consumer), funded or not."""
    return buyer_with_funds(amount_minor)


@dataclass
class Seller:
    user: User
    account: Account
    bundles: list[Bundle]
    device_id: int


def seller_with_bundles(*, hours: int = 2, wh: int = 1_000, organisation=None) -> Seller:
    """An organisation's trading account holding `hours` issued hourly bundles of `wh`."""
    kwargs = {"producer": organisation} if organisation is not None else {}
    device, (account,) = device_with_owners([Fraction(1)], **kwargs)
    add_readings(device, hours=hours, wh=lambda i: wh)
    certificate_services.certificate_issue(
        actor=_ib(),
        device_id=device.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(hours=hours),
    )
    bundles = list(Bundle.objects.filter(account=account).order_by("period_start"))
    return Seller(holder(account), account, bundles, device.pk)


@dataclass
class Buyer:
    user: User
    account: Account


def buyer_with_funds(amount_minor: int = 100_000, *, currency: str = "EUR") -> Buyer:
    """A trading account of a new organisation and `amount_minor` deposited for it."""
    account = AccountFactory(organisation=OrganisationFactory(is_producer=False))
    if amount_minor:
        deposit(account.organisation_id, amount_minor, currency=currency)
    return Buyer(holder(account), account)


def deposit(organisation_id: int, amount_minor: int, *, currency: str = "EUR"):
    return services.settlement_deposit(
        actor="system:test",
        organisation_id=organisation_id,
        currency=currency,
        amount_minor=amount_minor,
        reference=f"bank-{organisation_id}-{amount_minor}",
    )


def _ib() -> User:
    found = User.objects.filter(username="market-ib").first()
    return found or issuing_body_user(user__username="market-ib")
