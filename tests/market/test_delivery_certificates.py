"""Certificates of the delivered energy move from the sellers to the buyers at settlement."""

import pytest
from django.core.management import call_command

from certificates.models import Bundle
from certificates.replay import replay_ledger
from market import services
from market.models import SlotSettlementLine
from market.replay import replay_market
from market.services.delivery_certificates import pairs
from tests.certificates.factories import DAY
from tests.market.delivery_support import cleared_slot, consumed, produced
from tests.market.factories import seller_with_bundles
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db


def test_pairs_lay_the_delivered_wh_end_to_end_in_order():
    assert pairs([(1, 300), (2, 700)], [(5, 500), (6, 500)]) == [
        (1, 5, 300),
        (2, 5, 200),
        (2, 6, 500),
    ]
    assert pairs([(1, 0), (2, 10)], [(5, 10)]) == [(2, 5, 10)]
    assert pairs([], [(5, 10)]) == []


def test_the_sellers_certificates_of_the_slot_go_to_the_buyers():
    # given a seller holding an hourly bundle of 4,000 Wh issued for the slot's hour (its
    # hourly reading counts a quarter, 1,000 Wh, in the 15-minute slot) and two buyers
    seller = seller_with_bundles(hours=1, wh=4_000)
    [bundle] = seller.bundles
    slot = cleared_slot(
        [(0, 1_000, 5_000)],
        [(0, 600, 6_000), (1, 400, 6_000)],
        sellers=[seller],
        slot=DAY,
    )
    for buyer in slot.buyers:
        consumed(buyer, slot.start, 1_000)
    before = last_event_id()

    # when
    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then 600 + 400 Wh of certificates moved, the rest stays with the seller
    assert (settlement.delivered_wh, settlement.certificates_pending_wh) == (1_000, 0)
    received = [
        list(Bundle.objects.filter(account=b.account, status=Bundle.Status.ACTIVE))
        for b in slot.buyers
    ]
    assert [[b.unit_end - b.unit_start for b in got] for got in received] == [[600], [400]]
    assert all(got[0].device_id == bundle.device_id for got in received)
    kept = Bundle.objects.filter(account=seller.account, status=Bundle.Status.ACTIVE).get()
    assert kept.unit_end - kept.unit_start == 3_000
    assert sorted(SlotSettlementLine.objects.values_list("side", "certificates_wh")) == [
        ("buy", 400),
        ("buy", 600),
        ("sell", 1_000),
    ]
    [event] = events_since(before)
    assert event["data"]["units"]
    for got in received:
        assert f"bundle:{got[0].pk}" in event["subject"]
    assert replay_ledger().ok and replay_market().ok
    call_command("replay_ledger")


def test_without_issued_certificates_the_energy_settles_and_the_wh_are_pending():
    slot = cleared_slot([(0, 1_000, 5_000)], [(0, 1_000, 5_000)])
    produced(slot.sellers[0], slot.start, 1_000)
    consumed(slot.buyers[0], slot.start, 1_000)

    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    assert (settlement.status, settlement.delivered_wh) == ("settled", 1_000)
    assert settlement.certificates_pending_wh == 1_000
    assert not Bundle.objects.filter(account=slot.buyers[0].account).exists()
