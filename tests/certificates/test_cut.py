"""A cut (certificates.services.cut): bundles of one account cut into consecutive parts
for several receivers at once, one split per bundle, one event; all or nothing."""

import json

import pytest
from django.utils import translation

from accounts.models import Account
from certificates import errors, services
from certificates.models import Bundle, Transfer
from certificates.replay import replay_ledger
from certificates.views import _summary
from ledger.models import PendingEvent
from ledger.services import ledger_integrate
from tests.certificates.conftest import last_event_id, new_events, snapshot

pytestmark = pytest.mark.django_db


def _mandate(plant, n):
    return services.Mandate(
        holder_account_id=plant.producer_account.pk,
        reference={"contract_id": n, "execution_id": n, "trigger": "test"},
        receiver_agreed=True,
    )


def _cut(plant, cuts, receivers=None):
    receivers = receivers or [plant.buyer_account, plant.own_second_account]
    return services.certificate_transfer_cut(
        actor="system:test",
        receivers=[(a.number, _mandate(plant, n)) for n, a in enumerate(receivers)],
        cuts=cuts,
    )


def test_a_cut_gives_each_receiver_consecutive_units_in_one_split_and_one_event(issued):
    # given: two hour bundles of the producer
    first, second = issued.bundles[0], issued.bundles[1]
    before = last_event_id()

    # when: the first cut 100 / 50 (rest kept), the second 30 to the second receiver only
    buyer, own = _cut(issued, [(first.pk, [(0, 100), (1, 50)]), (second.pk, [(1, 30)])])

    # then: one split per bundle, the parts consecutive from the first unit, then the rest
    first.refresh_from_db()
    assert first.status == Bundle.Status.SPLIT
    children = list(Bundle.objects.filter(parent=first).order_by("unit_start"))
    s = first.unit_start
    assert [(b.unit_start, b.unit_end, b.account_id) for b in children] == [
        (s, s + 100, issued.buyer_account.pk),
        (s + 100, s + 150, issued.own_second_account.pk),
        (s + 150, first.unit_end, issued.producer_account.pk),
    ]
    assert [t.volume_wh for t in buyer] == [100]
    assert [t.volume_wh for t in own] == [50, 30]
    assert own[1].pk == own[0].pk + 1  # a receiver's transfers are consecutive
    assert Transfer.objects.filter(source_id=second.pk).get().volume_wh == 30
    # one event naming every object it changed, with each receiver's mandate
    assert new_events(before) == ["certificate.cut_transferred"]
    event = PendingEvent.objects.get(pk__gt=before)
    data = json.loads(bytes(event.event))["data"]
    assert [r["mandate"]["contract_id"] for r in data["receivers"]] == [0, 1]
    named = set(event.subjects)
    changed = Bundle.objects.filter(parent__in=[first, second])
    for obj in [first, second, *changed, *buyer, *own]:
        assert f"{obj.ledger_subject_type}:{obj.pk}" in named
    for account in (issued.producer_account, issued.buyer_account, issued.own_second_account):
        assert f"account:{account.pk}" in named
    ledger_integrate()
    report = replay_ledger()
    assert report.ok, report.problems


def test_a_bundle_cut_for_one_receiver_whole_moves_in_place(issued):
    bundle = issued.bundles[2]
    (transfer,), () = _cut(issued, [(bundle.pk, [(0, bundle.volume_wh)])])
    bundle.refresh_from_db()
    assert (transfer.bundle_id, bundle.account_id) == (bundle.pk, issued.buyer_account.pk)
    assert not Bundle.objects.filter(parent=bundle).exists()
    ledger_integrate()
    assert replay_ledger().ok


def test_a_bundle_cut_to_its_last_unit_leaves_no_rest(issued):
    bundle = issued.bundles[3]
    _cut(issued, [(bundle.pk, [(0, 10), (1, bundle.volume_wh - 10)])])
    assert Bundle.objects.filter(parent=bundle).count() == 2
    ledger_integrate()
    assert replay_ledger().ok


@pytest.mark.parametrize("refusal", ["closed receiver", "too much", "not the holder's"])
def test_a_refused_cut_changes_nothing(issued, refusal):
    # given
    bundle = issued.bundles[0]
    cuts = [(bundle.pk, [(0, 10), (1, 10)])]
    expected = errors.AccountClosed
    if refusal == "closed receiver":
        Account.objects.filter(pk=issued.own_second_account.pk).update(status=Account.Status.CLOSED)
    elif refusal == "too much":
        cuts = [(bundle.pk, [(0, bundle.volume_wh), (1, 1)])]
        expected = errors.InsufficientVolume
    else:
        buyer_bundle = issued.bundles[1]
        services.certificate_transfer(
            actor=issued.producer, bundle_id=buyer_bundle.pk, to_account_id=issued.buyer_account.pk
        )
        cuts = [(bundle.pk, [(0, 10)]), (buyer_bundle.pk, [(1, 10)])]
        expected = errors.NotBundleHolder
    before, rows = last_event_id(), snapshot()

    # when / then: the error, no row changed, no event
    with pytest.raises(expected):
        _cut(issued, cuts)
    assert snapshot() == rows
    assert new_events(before) == []


@pytest.mark.parametrize(
    ("language", "words"), [("en", "Cut for contracts: 180 Wh to accounts"), ("ru", "Раздел")]
)
def test_a_cut_reads_as_one_sentence_in_a_bundle_history(issued, language, words):
    first, second = issued.bundles[0], issued.bundles[1]
    before = last_event_id()
    _cut(issued, [(first.pk, [(0, 100), (1, 50)]), (second.pk, [(1, 30)])])
    data = json.loads(bytes(PendingEvent.objects.get(pk__gt=before).event))["data"]
    numbers = {a.pk: a.number for a in (issued.buyer_account, issued.own_second_account)}
    with translation.override(language):
        summary = _summary("certificate.cut_transferred", data, numbers)
    assert summary.startswith(words)
    assert issued.buyer_account.number in summary
    assert issued.own_second_account.number in summary
