"""Certificates issued after a slot settled are delivered by a later run: once, exactly."""

import datetime as dt
import io
from fractions import Fraction

import pytest
from django.core.management import call_command

from certificates import services as certificate_services
from certificates.models import Bundle, Retirement
from certificates.replay import replay_ledger
from ledger.models import LedgerEntry, PendingEvent
from market import services
from market.models import SlotSettlement, SlotSettlementLine
from market.replay import replay_market
from tests.certificates.conftest import run_together
from tests.certificates.factories import DAY, add_readings, device_with_owners, holder
from tests.conftest import requires_postgres
from tests.market.conftest import snapshot
from tests.market.delivery_support import cleared_slot, consumed
from tests.market.factories import Buyer, _ib
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db

CLAIM = {"beneficiary_name": "Anna Schmidt", "beneficiary_country": "DE", "purpose": "voluntary"}


def _settled_before_issuance(retire=None):
    """A slot (DAY, 15 min) settled while its seller's hourly 4,000 Wh were read but not
    issued: two bids of 600 and 400 Wh, all 1,000 Wh delivered, all pending."""
    device, (account,) = device_with_owners([Fraction(1)])
    add_readings(device, hours=1, wh=lambda i: 4_000)
    seller = Buyer(holder(account), account)
    slot = cleared_slot(
        [(0, 1_000, 5_000)],
        [(0, 600, 6_000), (1, 400, 6_000)],
        sellers=[seller],
        slot=DAY,
        retire=retire,
    )
    for buyer in slot.buyers:
        consumed(buyer, slot.start, 1_000)
    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)
    assert (settlement.delivered_wh, settlement.certificates_pending_wh) == (1_000, 1_000)
    return slot, settlement, device


def _issue(device):
    certificate_services.certificate_issue(
        actor=_ib(), device_id=device.pk, period_start=DAY, period_end=DAY + dt.timedelta(hours=1)
    )


def test_a_later_run_delivers_the_pending_certificates_once():
    # given a slot settled before its certificates were issued
    slot, settlement, device = _settled_before_issuance()
    # a run before issuance finds nothing to move and writes nothing
    before_nothing = snapshot()
    assert services.slot_certificates_deliver(settlement_id=settlement.pk, now=slot.after) == 0
    assert snapshot() == before_nothing

    # when the certificates are issued and the periodic run comes
    _issue(device)
    before = last_event_id()
    done = services.slot_certificates_deliver_due(now=slot.after)

    # then the 1,000 pending Wh move, 600 and 400 to the buyers, pending goes to 0
    assert [(s.pk, moved) for s, moved in done] == [(settlement.pk, 1_000)]
    settlement.refresh_from_db()
    assert settlement.certificates_pending_wh == 0
    got = [
        sum(b.volume_wh for b in Bundle.objects.filter(account=buyer.account))
        for buyer in slot.buyers
    ]
    assert got == [600, 400]
    assert sorted(SlotSettlementLine.objects.values_list("side", "certificates_wh")) == [
        ("buy", 400),
        ("buy", 600),
        ("sell", 1_000),
    ]
    # in one event naming the settlement, the changed orders and the bundles
    [event] = events_since(before)
    assert event["type"] == "market.slot_certificates_delivered"
    assert (event["data"]["moved_wh"], event["data"]["certificates_pending_wh"]) == (1_000, 0)
    assert f"slot_settlement:{settlement.pk}" in event["subject"]
    for order in slot.orders:
        assert f"order:{order.pk}" in event["subject"]
    assert event["data"]["units"]
    # and a second run is a no-op
    again = snapshot()
    assert services.slot_certificates_deliver_due(now=slot.after) == []
    assert snapshot() == again
    assert replay_ledger().ok and replay_market().ok
    call_command("replay_ledger")


def test_pending_wh_decrease_by_exactly_what_the_seller_holds():
    # given a slot settled with 1,000 Wh pending; the seller then sells 3,400 of the 4,000
    # Wh issued elsewhere, keeping 600 for the slot
    slot, settlement, device = _settled_before_issuance()
    _issue(device)
    [bundle] = Bundle.objects.filter(account=slot.sellers[0].account)
    other = device_with_owners([Fraction(1)])[1][0]
    certificate_services.certificate_transfer(
        actor=slot.sellers[0].user, bundle_id=bundle.pk, to_account_id=other.pk, volume_wh=3_400
    )

    # when the later run comes, then 600 Wh move (to the first bid) and 400 stay pending
    assert services.slot_certificates_deliver(settlement_id=settlement.pk, now=slot.after) == 600
    settlement.refresh_from_db()
    assert settlement.certificates_pending_wh == 400
    lines = {ln.order_id: ln.certificates_wh for ln in SlotSettlementLine.objects.all()}
    bid_600, bid_400 = (o.pk for o in slot.orders if o.side == "buy")
    assert (lines[bid_600], lines[bid_400]) == (600, 0)
    assert replay_ledger().ok and replay_market().ok


def test_a_bid_retiring_on_delivery_has_the_later_certificates_retired():
    slot, settlement, device = _settled_before_issuance(retire={0: CLAIM})
    _issue(device)
    before = last_event_id()

    services.slot_certificates_deliver(settlement_id=settlement.pk, now=slot.after)

    retirement = Retirement.objects.get()
    assert (retirement.account_id, retirement.volume_wh) == (slot.buyers[0].account.pk, 600)
    assert [e["type"] for e in events_since(before)] == [
        "market.slot_certificates_delivered",
        "certificate.retired",
    ]
    bid = next(o for o in slot.orders if o.side == "buy")
    assert SlotSettlementLine.objects.get(order=bid).retirement == retirement
    assert replay_ledger().ok and replay_market().ok


def test_an_unknown_settlement_is_refused(refused):
    refused(
        lambda: services.slot_certificates_deliver(settlement_id=10**9),
        "slot_settlement_not_found",
        404,
    )
    assert not SlotSettlement.objects.exists()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_later_runs_deliver_the_pending_certificates_once():
    # given a slot settled before issuance, then the certificates issued
    slot, settlement, device = _settled_before_issuance()
    _issue(device)

    # when four runs of its later delivery start at the same moment
    results = run_together(
        lambda i: services.slot_certificates_deliver(settlement_id=settlement.pk, now=slot.after),
        4,
    )

    # then exactly one moved the 1,000 Wh, in one event; the others found nothing pending
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(results) == [0, 0, 0, 1_000]
    settlement.refresh_from_db()
    assert settlement.certificates_pending_wh == 0
    received = Bundle.objects.filter(account__in=[b.account for b in slot.buyers])
    assert sum(b.volume_wh for b in received) == 1_000
    kind = "market.slot_certificates_delivered"
    assert (
        PendingEvent.objects.filter(kind=kind).count()
        + LedgerEntry.objects.filter(kind=kind).count()
    ) == 1
    assert replay_ledger().ok and replay_market().ok


def test_settle_slots_delivers_the_pending_certificates_too():
    _slot, settlement, device = _settled_before_issuance()
    _issue(device)
    out = io.StringIO()

    call_command("settle_slots", stdout=out)

    settlement.refresh_from_db()
    assert settlement.certificates_pending_wh == 0
    assert f"settlement {settlement.pk}: 1000 Wh of certificates delivered, 0 Wh pending" in (
        out.getvalue()
    )
