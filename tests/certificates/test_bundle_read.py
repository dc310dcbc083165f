"""The one-bundle read's fast path answers what the ORM and the generic serializer would."""

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework import serializers as drf
from rest_framework.test import APIClient

from accounts.services import api_token_create
from certificates import selectors, services
from certificates.api.serializers import BundleOutputSerializer
from certificates.models import Bundle, Issuance, StorageOrigin
from tests.certificates.factories import DAY
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def _generic(bundle: Bundle) -> dict:
    """What the ModelSerializer's own field-by-field representation gives."""
    return dict(drf.ModelSerializer.to_representation(BundleOutputSerializer(bundle), bundle))


def _assert_same(body: dict, expected: dict) -> None:
    assert list(body) == list(expected)  # the same keys in the same order
    assert body == expected


def _odd_bundles(issued) -> list[Bundle]:
    """A plain bundle, a split child, and a storage bundle with an origin, no emission
    factor and an expiry date: every branch of the representation."""
    plain = issued.bundles[0]
    services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[1].pk,
        to_account_number=issued.buyer_account.number,
        volume_wh=1,
    )
    child = Bundle.objects.filter(parent_id=issued.bundles[1].pk).first()
    stored = issued.bundles[2]
    Issuance.objects.filter(pk=stored.issuance_id).update(
        is_storage=True, emission_factor_g_per_kwh=None
    )
    Bundle.objects.filter(pk=stored.pk).update(expires_on=dt.date(2027, 3, 31))
    StorageOrigin.objects.create(
        issuance_id=stored.issuance_id,
        device_id=stored.device_id,
        unit_start=stored.unit_start,
        unit_end=stored.unit_end,
        charged_bundle=plain,
        origin_device_id=plain.device_id,
        origin_technology_code="T020001",
        origin_energy_source_code="F01050100",
        origin_period_start=DAY,
        origin_period_end=DAY + dt.timedelta(hours=1),
        charged_at=DAY + dt.timedelta(hours=2),
        efficiency_ppm=900_000,
    )
    return [plain, child, stored]


def test_hand_written_representation_is_the_model_serializers(issued):
    # given bundles that take every branch (one issuance: no emission factor, then one)
    ordinary = Bundle.objects.select_related("issuance", "account__organisation").get(
        pk=issued.bundles[5].pk
    )
    _assert_same(BundleOutputSerializer(ordinary).data, _generic(ordinary))
    bundles = _odd_bundles(issued)
    for factor in (None, Decimal("12.5")):
        Issuance.objects.filter(pk=bundles[0].issuance_id).update(emission_factor_g_per_kwh=factor)
        for bundle in bundles:
            orm = Bundle.objects.select_related("issuance", "account__organisation").get(
                pk=bundle.pk
            )
            # when it is serialised
            body = BundleOutputSerializer(orm).data
            # then the written-out body is the generic one
            _assert_same(body, _generic(orm))
            assert body["emission_factor_g_per_kwh"] == (factor and "12.500")
    body = BundleOutputSerializer(Bundle.objects.get(pk=bundles[2].pk)).data
    assert body["storage_origin"]["efficiency_ppm"] == 900_000
    assert body["expires_on"] == "2027-03-31" and body["parent"] is None
    assert BundleOutputSerializer(bundles[1]).data["parent"] == issued.bundles[1].pk


def test_one_statement_read_loads_what_the_orm_does(issued, django_assert_num_queries):
    for bundle in _odd_bundles(issued):
        # when the bundle is read by its hand-written statement
        with django_assert_num_queries(1):
            fast = selectors.bundle_detail(bundle_id=bundle.pk)
            issuance = fast.issuance  # loaded with it
            organisation = fast.account.organisation
        orm = selectors.bundle_detail_queryset().get(pk=bundle.pk)
        # then it holds the ORM's values, decoded alike (dates, datetimes, decimals)
        assert (fast.period_start, fast.expires_on, fast.status) == (
            orm.period_start,
            orm.expires_on,
            orm.status,
        )
        assert isinstance(fast.period_start, dt.datetime) and fast.period_start.tzinfo
        assert isinstance(issuance.commissioning_date, dt.date)
        assert organisation.legal_name == orm.account.organisation.legal_name
        _assert_same(BundleOutputSerializer(fast).data, _generic(orm))


@pytest.mark.parametrize("bundle_id", [0, -1, 10**9, 2**63, 2**70])
def test_no_such_bundle_is_none(issued, bundle_id):
    assert selectors.bundle_detail(bundle_id=bundle_id) is None


def test_api_read_with_a_token_is_the_generic_body(issued):
    # given an API token and a bundle
    _token, plaintext = api_token_create(user=issued.producer, name="read")
    bundle = issued.bundles[3]
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    # when it is read with the token and anonymously
    with_token = client.get(f"/api/v1/bundles/{bundle.pk}/")
    anonymous = APIClient().get(f"/api/v1/bundles/{bundle.pk}/")
    # then both answer the generic body; an id beyond bigint is a 404, not an error
    assert with_token.status_code == 200, with_token.content
    orm = selectors.bundle_detail_queryset().get(pk=bundle.pk)
    _assert_same(with_token.json(), dict(_generic(orm)))
    assert anonymous.json() == with_token.json()
    too_big = client.get(f"/api/v1/bundles/{2**70}/")
    assert too_big.status_code == 404 and too_big.json()["code"] == "not_found"


def test_the_organisation_name_is_the_holders_at_read_time(issued):
    # given a bundle moved to another organisation's account
    bundle = issued.bundles[4]
    other = AccountFactory()
    services.certificate_transfer(
        actor=issued.producer, bundle_id=bundle.pk, to_account_number=other.number
    )
    # when it is read
    body = APIClient().get(f"/api/v1/bundles/{bundle.pk}/").json()
    # then it names the new holder
    assert (body["account"], body["account_number"]) == (other.pk, other.number)
    assert body["organisation_name"] == other.organisation.legal_name
