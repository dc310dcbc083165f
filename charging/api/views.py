"""Charging API: stations, OCPP transaction events, OCMF uploads, tariffs, tokens, sessions,
bills, CDR export and renewable receipts. Views call services and selectors only."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from charging import cdr, selectors, services
from charging.api import serializers
from charging.errors import SessionNotBilled
from charging.messages import transaction_event_openapi_schema
from registry.api.schema import IDEMPOTENCY_KEY, error_responses, read_schema
from registry.api.viewsets import ScopedReadViewSet
from registry.idempotency import idempotent

_WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422)  # all idempotent (422: key reused)


def _created(data) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)


@read_schema(serializers.ChargingTariffOutputSerializer)
class ChargingTariffViewSet(ScopedReadViewSet):
    """OCPI 2.2.1 tariffs of charge point operators."""

    serializer_class = serializers.ChargingTariffOutputSerializer
    scope = staticmethod(selectors.tariff_list)

    @extend_schema(
        request=serializers.ChargingTariffInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.ChargingTariffOutputSerializer, **_WRITE_ERRORS},
        description="Create a tariff for an organisation you operate for. Negative prices, "
        "unsupported restrictions and step sizes other than 1 are refused.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.ChargingTariffInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        tariff = services.tariff_create(
            actor=request.user,
            organisation_id=values["organisation"],
            currency=values["currency"],
            elements=values["elements"],
        )
        return _created(serializers.ChargingTariffOutputSerializer(tariff).data)


@read_schema(serializers.ChargingTokenOutputSerializer)
class ChargingTokenViewSet(ScopedReadViewSet):
    """Drivers' idTokens and the organisation each bills to."""

    serializer_class = serializers.ChargingTokenOutputSerializer
    scope = staticmethod(selectors.token_list)

    @extend_schema(
        request=serializers.ChargingTokenInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.ChargingTokenOutputSerializer, **_WRITE_ERRORS},
        description="Register an idToken whose sessions bill to your organisation.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.ChargingTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        token = services.driver_token_register(
            actor=request.user,
            organisation_id=values["organisation"],
            id_token=values["id_token"],
            type=values["type"],
        )
        return _created(serializers.ChargingTokenOutputSerializer(token).data)


@read_schema(serializers.ChargingStationOutputSerializer)
class ChargingStationViewSet(ScopedReadViewSet):
    """Charging stations: devices with a charger meter, their EVSE id and tariff."""

    serializer_class = serializers.ChargingStationOutputSerializer
    scope = staticmethod(selectors.station_list)

    @extend_schema(
        request=serializers.ChargingStationInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.ChargingStationOutputSerializer, **_WRITE_ERRORS},
        description="Make a device you operate, with an active consumption meter, a station.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.ChargingStationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        station = services.station_register(
            actor=request.user,
            device_id=values.pop("device"),
            tariff_id=values.pop("tariff"),
            **values,
        )
        return _created(serializers.ChargingStationOutputSerializer(station).data)

    @extend_schema(
        request={"application/json": transaction_event_openapi_schema()},
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.ChargingSessionOutputSerializer, **_WRITE_ERRORS},
        description="An OCPP 2.0.1 TransactionEventRequest (Started, Updated, Ended) of this "
        "station, validated against the OCA schema. Ended bills the session.",
    )
    @action(detail=True, methods=["post"], url_path="transaction-events")
    @idempotent
    def transaction_events(self, request: Request, pk: str) -> Response:
        session = services.transaction_event_record(
            actor=request.user, station_id=int(pk), message=request.data
        )
        fresh = selectors.session_list(user=request.user).get(pk=session.pk)
        return Response(serializers.ChargingSessionOutputSerializer(fresh).data)

    @extend_schema(
        request=serializers.OcmfUploadInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.ChargingSessionOutputSerializer, **_WRITE_ERRORS},
        description="A signed OCMF record with a begin and an end reading; the signature must "
        "verify with the station's registered key. Records and bills the session.",
    )
    @action(detail=True, methods=["post"], url_path="ocmf")
    @idempotent
    def ocmf(self, request: Request, pk: str) -> Response:
        data = serializers.OcmfUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.ocmf_session_record(
            actor=request.user, station_id=int(pk), record=data.validated_data["ocmf"]
        )
        fresh = selectors.session_list(user=request.user).get(pk=session.pk)
        return _created(serializers.ChargingSessionOutputSerializer(fresh).data)


@read_schema(serializers.ChargingSessionOutputSerializer)
class ChargingSessionViewSet(ScopedReadViewSet):
    """Charging sessions of stations you operate or tokens of your organisation."""

    serializer_class = serializers.ChargingSessionOutputSerializer
    scope = staticmethod(selectors.session_list)

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, **error_responses(401, 404, 409)},
        description="The OCPI 2.2.1 Charge Detail Record of a billed session.",
    )
    @action(detail=True, methods=["get"])
    def cdr(self, request: Request, pk: str) -> Response:
        session = self.get_object()
        if session.status != session.Status.BILLED:
            raise SessionNotBilled(session_id=session.pk)
        return Response(cdr.session_cdr(session))

    @extend_schema(
        request=serializers.ChargingReceiptInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.ChargingReceiptOutputSerializer, **_WRITE_ERRORS},
        description="Retire renewable certificates of each hour (same grid area) from the "
        "account for the driver's organisation, and make the session's receipt.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def receipts(self, request: Request, pk: str) -> Response:
        data = serializers.ChargingReceiptInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        receipt = services.session_match(
            actor=request.user, session_id=int(pk), account_id=data.validated_data["account"]
        )
        fresh = selectors.receipt_list(user=request.user).get(pk=receipt.pk)
        return _created(
            serializers.ChargingReceiptOutputSerializer(fresh, context={"request": request}).data
        )


@read_schema(serializers.ChargingBillOutputSerializer)
class ChargingBillViewSet(ScopedReadViewSet):
    """Bills in integer minor units of the tariff's currency, with hourly periods."""

    serializer_class = serializers.ChargingBillOutputSerializer
    scope = staticmethod(selectors.bill_list)
    ordering_fields = ["id", "billed_at"]  # a bill has no created_at

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.ChargingBillOutputSerializer, **_WRITE_ERRORS},
        description="An admin or operator of the billed organisation pays a pending bill "
        "now, from its settlement account (docs/market.md). 409 `insufficient_funds` "
        "(nothing written) or `already_settled`.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def pay(self, request: Request, pk: str) -> Response:
        """Pay a pending bill now; 200 with its `settlement_reference`."""
        services.bill_pay(actor=request.user, bill_id=int(pk))
        fresh = selectors.bill_list(user=request.user).get(pk=int(pk))
        return Response(serializers.ChargingBillOutputSerializer(fresh).data)


@read_schema(serializers.ChargingReceiptOutputSerializer)
class ChargingReceiptViewSet(ScopedReadViewSet):
    """Renewable receipts: kWh, price, renewable share and the retirement statements."""

    serializer_class = serializers.ChargingReceiptOutputSerializer
    scope = staticmethod(selectors.receipt_list)
