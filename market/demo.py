"""Demo markets for `make run`: a certificate exchange in EUR run by the issuing body, the
buyer's euros deposited, and a resting offer of the producer's certificates; and a local
energy market with 15-minute slots for the demo grid area (its cleared prices price that
area's community bills). Runs after certificates.demo; idempotent."""

from django.db import transaction

from accounts.models import Account, Organisation, User
from assets.demo import AREA_CODE
from assets.models import GridArea
from certificates.models import Bundle
from market import services
from market.models import Market

CODE = "certificates-eur"
ENERGY_CODE = "energy-community-eur"
BUYER = "GreenBuy Energy GmbH"
PRODUCER = "Sunny Rooftops Cooperative eG"
OFFER_PRICE = 800  # EUR 8.00 per MWh


@transaction.atomic
def seed(stdout) -> None:
    if Market.objects.filter(code=CODE).exists():
        stdout.write("Demo market exists already.")
        return
    admin = User.objects.filter(username="admin").first()
    issuing_body = Organisation.objects.filter(is_issuing_body=True).order_by("pk").first()
    producer_account = Account.objects.filter(
        organisation__legal_name=PRODUCER, kind=Account.Kind.TRADING
    ).first()
    buyer = Organisation.objects.filter(legal_name=BUYER).first()
    if None in (admin, issuing_body, producer_account, buyer):
        stdout.write("The demo market needs the demo participants first; skipped.")
        return
    stdout.write("Creating the demo market:")
    market = services.market_create(
        actor=admin,
        code=CODE,
        name="Certificates, EUR, continuous",
        currency="EUR",
        operator_id=issuing_body.pk,
        price_min=0,
        price_max=100_000,
        fee_bps=50,
    )
    services.settlement_deposit(
        actor=admin,
        organisation_id=buyer.pk,
        currency="EUR",
        amount_minor=100_000,
        reference="demo deposit",
    )
    stdout.write(f"  market {CODE} (fee 0.5%), EUR 1,000.00 deposited for {BUYER}")
    energy = services.market_create(
        actor=admin,
        code=ENERGY_CODE,
        name="Community energy, EUR, 15-minute slots",
        currency="EUR",
        operator_id=issuing_body.pk,
        price_min=0,
        price_max=100_000,
        kind=Market.Kind.ENERGY,
        matching=Market.Matching.UNIFORM,
        slot_minutes=15,
        gate_closure_minutes=5,
        grid_area_id=GridArea.objects.filter(code=AREA_CODE).values_list("pk", flat=True).first(),
    )
    stdout.write(
        f"  market {ENERGY_CODE} (id {energy.pk}): bid or offer for a slot with slot_start, "
        "cleared at gate closure (5 minutes before the slot)"
    )
    bundle = (
        Bundle.objects.filter(account=producer_account, status=Bundle.Status.ACTIVE)
        .order_by("-unit_end")
        .first()
    )
    producer = User.objects.filter(username="producer").first()
    if bundle is None or producer is None:
        stdout.write("  no certificates to offer (run certificates.demo first)")
        return
    placed = services.order_place(
        actor=producer,
        market_id=market.pk,
        side="sell",
        limit_price=OFFER_PRICE,
        bundle_id=bundle.pk,
    )
    stdout.write(
        f"  {PRODUCER} offers {placed.order.quantity_wh} Wh at EUR 8.00/MWh "
        f"(order {placed.order.pk}); buy it with POST /api/v1/market/orders/"
    )
