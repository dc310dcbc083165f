"""The transfer and retirement outputs, whose fields are built once per thread
(`FieldsBuiltOnce`), render exactly what the same serializers built afresh render, each
instance with its own context."""

import pytest
from django.test import RequestFactory
from rest_framework import serializers

from certificates import services
from certificates.api.serializers import RetirementOutputSerializer, TransferOutputSerializer
from tests.certificates.test_retirement import CLAIM

pytestmark = pytest.mark.django_db


class FreshTransferOutput(TransferOutputSerializer):
    fields = serializers.Serializer.fields  # DRF's own: a copy of the declared fields


class FreshRetirementOutput(RetirementOutputSerializer):
    fields = serializers.Serializer.fields  # DRF's own: the model introspected each time


def test_the_transfer_output_renders_as_if_built_afresh(issued):
    # given two transfers, one whole and one split
    whole = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[0].pk,
        to_account_number=issued.buyer_account.number,
    )
    split = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[1].pk,
        to_account_number=issued.buyer_account.number,
        volume_wh=7,
    )

    # when each is rendered twice, alternating with the other
    bodies = [TransferOutputSerializer(t).data for t in (whole, split, whole, split)]

    # then
    assert bodies == [FreshTransferOutput(t).data for t in (whole, split, whole, split)]
    assert bodies[1]["volume_wh"] == 7 and bodies[1]["source_bundle"] == issued.bundles[1].pk
    assert TransferOutputSerializer(whole).fields["id"] is TransferOutputSerializer().fields["id"]


def test_the_retirement_output_renders_with_each_instances_own_request(issued, settings):
    # given a retirement, and two requests to two host names
    settings.ALLOWED_HOSTS = ["one.test", "two.test"]
    retirement = services.certificate_retire(
        actor=issued.producer, items=[(issued.bundles[0].pk, 5)], **CLAIM
    )
    requests = [RequestFactory(SERVER_NAME=host).get("/") for host in ("one.test", "two.test")]

    # when it is rendered for one, then for the other
    bodies = [RetirementOutputSerializer(retirement, context={"request": r}).data for r in requests]

    # then each names its own host, and says what DRF's own field building says
    assert bodies == [
        FreshRetirementOutput(retirement, context={"request": r}).data for r in requests
    ]
    assert bodies[0]["statement_url"].startswith("http://one.test/")
    assert bodies[1]["statement_api_url"].startswith("http://two.test/")
    assert bodies[0]["volume_wh"] == 5 and len(bodies[0]["bundles"]) == 1
