import datetime as dt
import hashlib
import io
import json

import pytest
import rfc8785

from certificates import errors, selectors, services
from certificates.models import Bundle, Retirement
from ledger.models import PendingEvent
from registry.errors import InvalidInput
from tests.certificates.conftest import last_event_id, new_events, snapshot
from tests.certificates.factories import DAY

pytestmark = pytest.mark.django_db
CLAIM = {
    "beneficiary_name": "Stadtwerke Musterstadt Kunde 4711",
    "beneficiary_country": "DE",
    "consumption_start": DAY,
    "consumption_end": DAY + dt.timedelta(days=1),
    "purpose": Retirement.Purpose.SCOPE2_MARKET_BASED,
    "location": "Musterstadt, DE",
}


def _retire(plant, items, actor=None, **claim):
    return services.certificate_retire(
        actor=actor or plant.producer, items=items, **(CLAIM | claim)
    )


def test_retiring_a_volume_splits_and_records_the_claim(issued):
    # given
    bundle = issued.bundles[0]
    before = last_event_id()
    # when
    retirement = _retire(issued, [(bundle.pk, 123)])
    # then the first 123 units are retired for good, the rest stays active
    retired, rest = Bundle.objects.filter(parent=bundle).order_by("unit_start")
    assert (retired.status, retired.volume_wh) == (Bundle.Status.RETIRED, 123)
    assert rest.status == Bundle.Status.ACTIVE and rest.account_id == bundle.account_id
    assert list(retirement.items.values_list("bundle_id", flat=True)) == [retired.pk]
    assert retirement.volume_wh == 123 and retirement.account_id == issued.producer_account.pk
    # and one event carries a commitment to the claim, never the beneficiary's name
    assert new_events(before) == ["certificate.retired"]
    raw = bytes(PendingEvent.objects.get(pk__gt=before).event)
    assert b"Musterstadt" not in raw
    data = json.loads(raw)["data"]
    assert data["public_id"] == str(retirement.public_id)
    claim = json.loads(json.dumps({k: str(v) for k, v in CLAIM.items()}))
    claim["consumption_start"] = DAY.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    claim["consumption_end"] = (DAY + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    opened = hashlib.sha256(rfc8785.dumps(claim | {"salt": retirement.claim_salt})).hexdigest()
    assert data["claim_commitment"] == opened == retirement.claim_commitment


def test_retiring_several_whole_bundles_makes_one_statement(issued):
    items = [(b.pk, None) for b in issued.bundles[:3]]
    retirement = _retire(issued, items)
    assert retirement.volume_wh == sum(b.volume_wh for b in issued.bundles[:3])
    assert set(
        Bundle.objects.filter(pk__in=[b.pk for b in issued.bundles[:3]]).values_list(
            "status", flat=True
        )
    ) == {Bundle.Status.RETIRED}


@pytest.mark.parametrize(
    ("claim", "error"),
    [
        ({"beneficiary_name": ""}, errors.BeneficiaryRequired),
        ({"beneficiary_name": "   "}, errors.BeneficiaryRequired),
        ({"beneficiary_country": "Germany"}, errors.BeneficiaryRequired),
        ({"purpose": "greenwashing"}, InvalidInput),
        ({"consumption_end": DAY - dt.timedelta(hours=1)}, errors.InvalidPeriod),
    ],
    ids=["no-name", "blank-name", "bad-country", "bad-purpose", "backwards"],
)
def test_bad_claims_are_refused_and_change_nothing(issued, claim, error):
    before = snapshot()
    with pytest.raises(error) as raised:
        _retire(issued, [(issued.bundles[0].pk, None)], **claim)
    assert raised.value.status == 400
    assert snapshot() == before


def test_retirement_is_final(issued):
    _retire(issued, [(issued.bundles[0].pk, None)])
    before = snapshot()
    with pytest.raises(errors.BundleNotActive):
        _retire(issued, [(issued.bundles[0].pk, None)])
    with pytest.raises(errors.BundleNotActive):
        services.certificate_transfer(
            actor=issued.producer,
            bundle_id=issued.bundles[0].pk,
            to_account_id=issued.buyer_account.pk,
        )
    assert snapshot() == before


def test_cannot_retire_someone_elses_or_from_two_accounts(issued):
    services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[1].pk,
        to_account_id=issued.own_second_account.pk,
    )
    before = snapshot()
    with pytest.raises(errors.NotBundleHolder):
        _retire(issued, [(issued.bundles[0].pk, None)], actor=issued.buyer)
    with pytest.raises(errors.InvalidVolume):
        _retire(issued, [(issued.bundles[0].pk, None), (issued.bundles[1].pk, None)])
    with pytest.raises(errors.InsufficientVolume):
        _retire(issued, [(issued.bundles[0].pk, 10**9)])
    assert snapshot() == before


@pytest.mark.subject_index
def test_statement_verifies_offline(issued, tmp_path):
    # given certificates sold to the buyer, who retires part of them
    from ledger.keys import registry_signer
    from ledger.services import checkpoint_create, ledger_integrate
    from ledger.verify.__main__ import main as verify_main

    transfer = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[8].pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=500,
    )
    retirement = _retire(issued, [(transfer.bundle_id, 200)], actor=issued.buyer)
    ledger_integrate()
    checkpoint_create()
    # when the statement is assembled
    statement = selectors.retirement_statement(retirement=retirement)
    # then it lists the issuance, the split transfer and the retirement, all proven
    kinds = [step.kind for step in statement["history"]]
    assert kinds == ["certificate.issued", "certificate.transferred", "certificate.retired"]
    assert len(statement["entries"]) == 3 and statement["checkpoint"]
    assert statement["withdrawn"] is False
    # and `python -m ledger.verify history --file` accepts it as it is
    path = tmp_path / "statement.json"
    path.write_text(
        json.dumps(
            {
                "checkpoint": statement["checkpoint"],
                "entries": statement["entries"],
                "completeness": statement["completeness"],
                "retirement": str(retirement.public_id),
            }
        )
    )
    out = io.StringIO()
    assert verify_main(["history", "--file", str(path), "--key", registry_signer().vkey], out) == 0
    assert f"complete: 1 entries about retirement:{retirement.pk}" in out.getvalue()
    # and one left out is caught: the statement proves its histories complete
    left_out = {**statement, "entries": statement["entries"][:1]}
    path.write_text(json.dumps({k: left_out[k] for k in ("checkpoint", "entries", "completeness")}))
    assert verify_main(["history", "--file", str(path), "--key", registry_signer().vkey]) == 1
    # and a tampered entry does not verify
    statement["entries"][1]["event_b64"] = statement["entries"][2]["event_b64"]
    path.write_text(
        json.dumps({k: statement[k] for k in ("checkpoint", "entries", "completeness")})
    )
    assert verify_main(["history", "--file", str(path), "--key", registry_signer().vkey]) == 1


def _hours(issued, volumes):
    """(hour start, hour end, [(bundle, volume)]) for the first bundles, one hour each."""
    return [
        (b.period_start, b.period_end, [(b.pk, volume)])
        for b, volume in zip(issued.bundles, volumes, strict=False)
    ]


def test_retiring_by_periods_makes_one_retirement_and_event_each_as_retiring_each_would(issued):
    # given: three hours, the first retired in part, the others whole
    claim = {k: v for k, v in CLAIM.items() if not k.startswith("consumption")}
    periods = _hours(issued, [123, None, None])
    before = last_event_id()
    # when
    retirements = services.certificate_retire_periods(
        actor=issued.producer, periods=periods, **claim
    )
    # then: a retirement per period, for that period, in order, with its own event
    assert [(r.consumption_start, r.volume_wh) for r in retirements] == [
        (periods[0][0], 123),
        (periods[1][0], issued.bundles[1].volume_wh),
        (periods[2][0], issued.bundles[2].volume_wh),
    ]
    assert new_events(before) == ["certificate.retired"] * 3
    rows = PendingEvent.objects.filter(pk__gt=before).order_by("pk")
    events = [json.loads(bytes(row.event)) for row in rows]
    assert [e["data"]["public_id"] for e in events] == [str(r.public_id) for r in retirements]
    retired, rest = Bundle.objects.filter(parent=issued.bundles[0]).order_by("unit_start")
    assert (retired.status, rest.status) == (Bundle.Status.RETIRED, Bundle.Status.ACTIVE)
    assert list(retirements[0].items.values_list("bundle_id", flat=True)) == [retired.pk]
    # and each event is what certificate_retire's would be for that period (same keys and
    # subjects; the claim commitment opens with that period's claim)
    one = _retire(
        issued,
        [(issued.bundles[3].pk, 123)],
        consumption_start=issued.bundles[3].period_start,
        consumption_end=issued.bundles[3].period_end,
    )
    single = json.loads(bytes(PendingEvent.objects.order_by("-pk").first().event))
    assert sorted(events[0]["data"]) == sorted(single["data"])
    assert [s.split(":")[0] for s in events[0]["subject"]] == [
        s.split(":")[0] for s in single["subject"]
    ]
    assert one.claim_commitment != retirements[0].claim_commitment
    claim_of_first = {k: str(v) for k, v in claim.items()} | {
        "consumption_start": periods[0][0].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "consumption_end": periods[0][1].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "salt": retirements[0].claim_salt,
    }
    opened = hashlib.sha256(rfc8785.dumps(claim_of_first)).hexdigest()
    assert events[0]["data"]["claim_commitment"] == opened


@pytest.mark.parametrize(
    ("periods", "error"),
    [
        (lambda i: _hours(i, [None, None]) + _hours(i, [None]), errors.DuplicateBundle),
        (lambda i: _hours(i, [None, 10**9]), errors.InsufficientVolume),
        (lambda i: [(DAY, DAY, [(i.bundles[0].pk, None)])], errors.InvalidPeriod),
        (lambda i: [(DAY, DAY + dt.timedelta(hours=1), [])], errors.InvalidVolume),
    ],
    ids=["repeated-bundle", "too-much", "empty-period", "no-items"],
)
def test_a_refused_period_retires_none_of_them(issued, periods, error):
    # given
    claim = {k: v for k, v in CLAIM.items() if not k.startswith("consumption")}
    before = snapshot()
    # when / then
    with pytest.raises(error):
        services.certificate_retire_periods(actor=issued.producer, periods=periods(issued), **claim)
    assert snapshot() == before


def test_someone_elses_bundles_cannot_be_retired_by_periods(issued):
    claim = {k: v for k, v in CLAIM.items() if not k.startswith("consumption")}
    before = snapshot()
    with pytest.raises(errors.NotBundleHolder):
        services.certificate_retire_periods(
            actor=issued.buyer, periods=_hours(issued, [None]), **claim
        )
    assert snapshot() == before


def test_the_answer_to_a_retirement_needs_no_statement_of_its_own(issued):
    """The service hands over what the response shows (the items it wrote, the account
    and its organisation's name as locked): the same answer as read back, no queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from certificates.api.serializers import RetirementOutputSerializer

    claim = {k: v for k, v in CLAIM.items() if not k.startswith("consumption")}
    made = [
        _retire(issued, [(issued.bundles[0].pk, 7), (issued.bundles[1].pk, None)]),
        *services.certificate_retire_periods(
            actor=issued.producer,
            periods=[(b.period_start, b.period_end, [(b.pk, 5)]) for b in issued.bundles[2:4]],
            **claim,
        ),
    ]
    for retirement in made:
        with CaptureQueriesContext(connection) as queries:
            answer = RetirementOutputSerializer(retirement).data
        stored = Retirement.objects.get(pk=retirement.pk)
        assert (answer, len(queries)) == (RetirementOutputSerializer(stored).data, 0)
        assert answer["organisation_name"] == issued.producer_account.organisation.legal_name
