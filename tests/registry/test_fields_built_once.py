"""`FieldsBuiltOnce`: an input serializer whose fields are built once per thread validates
and refuses exactly as the same serializer built afresh."""

import threading

import pytest
from rest_framework import serializers

from certificates.api.serializers import RetireBundleInputSerializer, TransferCreateInputSerializer
from market.api.serializers import OrderCreateInputSerializer
from registry.api.serializers import FieldsBuiltOnce, StrictInputSerializer

GOOD = {"market": 1, "side": "buy", "limit_price": 55_000, "quantity_wh": 1_000, "account": 2}
BAD = [
    {},
    {"market": "x", "side": "hold", "limit_price": 1.5},
    GOOD | {"criteria": {"country": "DEU", "device": "x", "colour": "red"}},
    GOOD | {"retire_on_delivery": {"beneficiary_country": "XX"}},
    GOOD | {"time_in_force": "forever", "unknown": 1},
    GOOD | {"slot_start": "yesterday", "min_fill_wh": None},
]


class FreshOrderInput(OrderCreateInputSerializer):
    """The order input with DRF's own field building (a copy of the declared fields)."""

    fields = StrictInputSerializer.fields


def outcome(serializer_class: type[serializers.Serializer], data: dict):
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return True, dict(serializer.validated_data)
    return False, serializer.errors


def test_the_second_instance_reuses_the_fields_bound_to_itself():
    # given
    first = OrderCreateInputSerializer(data=GOOD)
    first.is_valid()

    # when
    second = OrderCreateInputSerializer(data=GOOD)
    second.is_valid()

    # then
    assert second.fields["market"] is first.fields["market"]
    assert all(field.parent is second for field in second.fields.values())
    assert second.fields["criteria"].fields["country"].root is second


def test_reused_fields_accept_and_refuse_like_fresh_ones():
    assert FreshOrderInput(data=GOOD).fields["market"] is not FreshOrderInput().fields["market"]
    for data in [GOOD, *BAD, GOOD, *reversed(BAD)]:
        assert outcome(OrderCreateInputSerializer, data) == outcome(FreshOrderInput, data), data


def test_each_thread_builds_its_own_fields():
    mine = OrderCreateInputSerializer(data=GOOD).fields["market"]
    theirs = []

    thread = threading.Thread(
        target=lambda: theirs.append(OrderCreateInputSerializer(data=GOOD).fields["market"])
    )
    thread.start()
    thread.join()

    assert theirs[0] is not mine
    assert OrderCreateInputSerializer(data=GOOD).fields["market"] is mine


def test_the_mixin_leaves_the_serializers_description_to_its_own_classes():
    assert OrderCreateInputSerializer.__doc__ is None  # the schema then reads the base's
    assert FieldsBuiltOnce.__doc__ is None


class FreshTransferInput(TransferCreateInputSerializer):
    fields = StrictInputSerializer.fields


class FreshRetireInput(RetireBundleInputSerializer):
    fields = StrictInputSerializer.fields


CLAIM = {
    "beneficiary_name": "Households of Lyon",
    "beneficiary_country": "FR",
    "consumption_start": "2026-01-01T00:00:00Z",
    "consumption_end": "2026-01-01T01:00:00Z",
    "purpose": "disclosure",
}


@pytest.mark.parametrize(
    ("built_once", "fresh", "inputs"),
    [
        (
            TransferCreateInputSerializer,
            FreshTransferInput,
            [
                {"to_account": "A-1", "volume_wh": 1},
                {"to_account": "A-1"},
                {"to_account": "", "volume_wh": 0},
                {"to_account": "A-1", "volume_wh": "x", "require_acceptance": "maybe"},
                {"volume_wh": 1, "extra": True},
            ],
        ),
        (
            RetireBundleInputSerializer,
            FreshRetireInput,
            [
                CLAIM,
                CLAIM | {"volume_wh": 5},
                CLAIM | {"beneficiary_country": "ZZ"},
                CLAIM | {"consumption_start": "soon", "purpose": "fun"},
                {"volume_wh": -1},
            ],
        ),
    ],
)
def test_the_transfer_and_retirement_inputs_refuse_like_fresh_ones(built_once, fresh, inputs):
    for data in [*inputs, *reversed(inputs)]:
        assert outcome(built_once, data) == outcome(fresh, data), data
