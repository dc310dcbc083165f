from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from market import errors, selectors, services
from market.api import serializers
from market.models import SettlementAccount
from registry.api.schema import IDEMPOTENCY_KEY, error_responses, read_schema
from registry.api.viewsets import ScopedReadViewSet
from registry.idempotency import idempotent

WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422)


@read_schema(serializers.MarketOutputSerializer, list_errors=(400,), retrieve_errors=(404,))
class MarketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Markets: what each trades, its currency, price band and fee (public)."""

    serializer_class = serializers.MarketOutputSerializer
    ordering_fields = ["id", "code", "created_at"]
    permission_classes = [permissions.AllowAny]
    filterset_fields = ["kind", "currency", "status"]
    lookup_value_regex = r"[0-9]+"
    queryset = selectors.market_list()

    @extend_schema(responses={200: serializers.BookOutputSerializer, **error_responses(404)})
    @action(detail=True, methods=["get"])
    def book(self, request: Request, pk: str) -> Response:
        """The open orders aggregated by price level, best first (no parties shown)."""
        book = selectors.market_book(market=self.get_object())
        return Response(serializers.BookOutputSerializer(book).data)


@read_schema(serializers.OrderOutputSerializer)
class OrderViewSet(ScopedReadViewSet):
    """Your organisations' orders; place, amend and cancel."""

    serializer_class = serializers.OrderOutputSerializer
    filterset_fields = ["market", "side", "status", "organisation", "product", "slot_start"]
    ordering_fields = ["id", "created_at", "limit_price"]
    scope = staticmethod(selectors.order_list)

    @extend_schema(
        request=serializers.OrderCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.PlacementOutputSerializer, **WRITE_ERRORS},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        """Place a bid (funds escrowed at its limit) or an offer (units reserved); it trades
        at once against the book and the rest rests (GTC) or is cancelled (IOC, FOK).
        In an energy market, a bid or offer for `slot_start` rests until its slot clears at
        gate closure (offers reserve nothing)."""
        data = serializers.OrderCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        placement = services.order_place(
            actor=request.user,
            market_id=values["market"],
            side=values["side"],
            limit_price=values["limit_price"],
            quantity_wh=values.get("quantity_wh"),
            account_id=values.get("account"),
            bundle_id=values.get("bundle"),
            time_in_force=values["time_in_force"],
            min_fill_wh=values["min_fill_wh"],
            criteria=values.get("criteria"),
            slot_start=values.get("slot_start"),
            retire_on_delivery=values.get("retire_on_delivery"),
        )
        body = serializers.placement_data(placement)
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.OrderOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request: Request, pk: str) -> Response:
        """Cancel an open order: its escrowed funds or reserved units are released."""
        order = services.order_cancel(actor=request.user, order_id=int(pk))
        return Response(serializers.OrderOutputSerializer(order).data)

    @extend_schema(
        request=serializers.OrderAmendInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.PlacementOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def amend(self, request: Request, pk: str) -> Response:
        """Change the limit price and/or the total quantity. A new price or more quantity
        loses time priority and may trade at once."""
        data = serializers.OrderAmendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        placement = services.order_amend(
            actor=request.user,
            order_id=int(pk),
            limit_price=data.validated_data.get("limit_price"),
            quantity_wh=data.validated_data.get("quantity_wh"),
        )
        return Response(serializers.placement_data(placement))


@read_schema(serializers.SlotClearingOutputSerializer, list_errors=(400,), retrieve_errors=(404,))
class SlotClearingViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Cleared delivery slots of energy markets: price, volume and each order's cleared Wh
    (public, like the book: no parties shown). Filter by `market` and `slot_start`."""

    serializer_class = serializers.SlotClearingOutputSerializer
    ordering_fields = ["id", "slot_start", "cleared_at"]
    permission_classes = [permissions.AllowAny]
    filterset_fields = ["market", "slot_start"]
    lookup_value_regex = r"[0-9]+"
    queryset = selectors.slot_clearing_list()

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.SlotSettlementOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    @idempotent
    def settle(self, request: Request, pk: str) -> Response:
        """The market operator settles the slot's delivery against the meter readings once
        the slot has ended (the periodic task does it too): `waiting` while readings are
        missing within the market's grace period, then `settled`. A settled slot is
        returned as it is."""
        settlement = services.slot_settle(actor=request.user, clearing_id=int(pk))
        settlement = selectors.slot_settlement_get(clearing_id=settlement.clearing_id)
        return Response(serializers.SlotSettlementOutputSerializer(settlement).data)

    @extend_schema(
        request=None,
        responses={200: serializers.SlotSettlementOutputSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["get"])
    def settlement(self, request: Request, pk: str) -> Response:
        """The slot's delivery settlement (public like the clearing: order ids, no parties);
        404 until a settlement run has looked at the slot."""
        clearing = self.get_object()
        settlement = selectors.slot_settlement_get(clearing_id=clearing.pk)
        if settlement is None:
            raise errors.SlotSettlementNotFound(clearing_id=clearing.pk)
        return Response(serializers.SlotSettlementOutputSerializer(settlement).data)


@read_schema(serializers.TradeOutputSerializer)
class TradeViewSet(ScopedReadViewSet):
    """Trades where your organisations bought or sold."""

    serializer_class = serializers.TradeOutputSerializer
    filterset_fields = ["market", "buy_order", "sell_order"]
    scope = staticmethod(selectors.trade_list)


@read_schema(serializers.SettlementAccountOutputSerializer)
class SettlementAccountViewSet(ScopedReadViewSet):
    """Your organisations' money per currency: available and reserved (minor units)."""

    serializer_class = serializers.SettlementAccountOutputSerializer
    filterset_fields = ["organisation", "currency"]
    scope = staticmethod(selectors.settlement_account_list)

    @extend_schema(
        responses={
            200: serializers.JournalLineOutputSerializer(many=True),
            **error_responses(401, 404),
        }
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def journal(self, request: Request, pk: str) -> Response:
        """The account's journal lines, newest first (paginated)."""
        account: SettlementAccount = self.get_object()
        page = self.paginate_queryset(selectors.journal_lines(account=account))
        return self.get_paginated_response(
            serializers.JournalLineOutputSerializer(page, many=True).data
        )


class _MoneyMovementView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    service = staticmethod(services.settlement_deposit)

    def _record(self, request: Request) -> Response:
        data = serializers.MoneyMovementInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        entry = self.service(
            actor=request.user,
            organisation_id=values["organisation"],
            currency=values["currency"],
            amount_minor=values["amount_minor"],
            reference=values["reference"],
        )
        account = entry.lines.exclude(account__kind="external").get().account
        body = serializers.MoneyMovementOutputSerializer({"entry": entry, "account": account}).data
        return Response(body, status=status.HTTP_201_CREATED)


class DepositView(_MoneyMovementView):
    """The market operator records money received for an organisation."""

    @extend_schema(
        request=serializers.MoneyMovementInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.MoneyMovementOutputSerializer, **WRITE_ERRORS},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        return self._record(request)


class WithdrawalView(_MoneyMovementView):
    """The market operator records money paid out to an organisation."""

    service = staticmethod(services.settlement_withdraw)

    @extend_schema(
        request=serializers.MoneyMovementInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.MoneyMovementOutputSerializer, **WRITE_ERRORS},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        return self._record(request)
