"""API of trading agents: delegate, list, read, change preferences, revoke; decisions."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from market.agent_models import AgentDecision, TradingAgent
from market.agents import selectors, services
from registry.api.schema import IDEMPOTENCY_KEY, error_responses, read_schema
from registry.api.serializers import StrictInputSerializer
from registry.api.viewsets import ScopedReadViewSet
from registry.idempotency import idempotent

PRICE_HELP = "Minor units of the market's currency per MWh, within its price band."


class AgentOutputSerializer(serializers.ModelSerializer):
    """A trading agent: whose, where, its preferences and status."""

    class Meta:
        model = TradingAgent
        fields = [
            "id",
            "organisation",
            "market",
            "account",
            "delegated_by",
            "min_sell_price",
            "max_buy_price",
            "reserve_wh",
            "history_days",
            "status",
            "created_at",
            "updated_at",
            "revoked_at",
            "revoked_by",
        ]


class AgentCreateInputSerializer(StrictInputSerializer):
    market = serializers.IntegerField(help_text="An energy (slot) market.")
    account = serializers.IntegerField(help_text="Your organisation's trading account.")
    min_sell_price = serializers.IntegerField(help_text=f"Never offers below this. {PRICE_HELP}")
    max_buy_price = serializers.IntegerField(help_text=f"Never bids above this. {PRICE_HELP}")
    reserve_wh = serializers.IntegerField(
        required=False, default=0, help_text="Battery charge (Wh) it never sells below."
    )
    history_days = serializers.IntegerField(
        required=False, default=7, help_text="Days of readings its forecast averages (1-60)."
    )


class AgentUpdateInputSerializer(StrictInputSerializer):
    min_properties = 1  # the service refuses an update that changes nothing
    min_sell_price = serializers.IntegerField(required=False, help_text=PRICE_HELP)
    max_buy_price = serializers.IntegerField(required=False, help_text=PRICE_HELP)
    reserve_wh = serializers.IntegerField(required=False)
    history_days = serializers.IntegerField(required=False)


class AgentRevocationOutputSerializer(serializers.Serializer):
    """The revoked agent, the orders revoking it cancelled, and those that stay (their
    slot's gate had closed: they clear as placed)."""

    agent = AgentOutputSerializer()
    cancelled_orders = serializers.ListField(child=serializers.IntegerField())
    staying_orders = serializers.ListField(child=serializers.IntegerField())


class AgentDecisionOutputSerializer(serializers.ModelSerializer):
    """One run of an agent for one slot: forecast, what it did, why, and its order."""

    class Meta:
        model = AgentDecision
        fields = [
            "id",
            "agent",
            "slot_start",
            "action",
            "side",
            "quantity_wh",
            "price",
            "production_wh",
            "consumption_wh",
            "battery_charge_wh",
            "reason",
            "explanation",
            "order",
            "cancelled_order",
            "decided_at",
        ]


WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422)


@read_schema(AgentOutputSerializer)
class TradingAgentViewSet(ScopedReadViewSet):
    """Your organisations' trading agents: software that places, amends and cancels
    ordinary energy orders for each slot from a forecast of your readings."""

    serializer_class = AgentOutputSerializer
    filterset_fields = ["market", "organisation", "status"]
    scope = staticmethod(selectors.agent_list)

    @extend_schema(
        request=AgentCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: AgentOutputSerializer, **WRITE_ERRORS},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        """Delegate trading in an energy market to an agent, with its preferences. Its
        orders are placed with your rights and your organisation's funds."""
        data = AgentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        agent = services.agent_delegate(
            actor=request.user,
            market_id=values["market"],
            account_id=values["account"],
            min_sell_price=values["min_sell_price"],
            max_buy_price=values["max_buy_price"],
            reserve_wh=values["reserve_wh"],
            history_days=values["history_days"],
        )
        return Response(AgentOutputSerializer(agent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AgentUpdateInputSerializer,
        responses={200: AgentOutputSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change an active agent's preferences (from its next run); a revoked agent: 409."""
        data = AgentUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent = services.agent_update(actor=request.user, agent_id=int(pk), **data.validated_data)
        return Response(AgentOutputSerializer(agent).data)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: AgentRevocationOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def revoke(self, request: Request, pk: str) -> Response:
        """Revoke the agent: its open orders are cancelled in the same transaction (those
        whose slot's gate has closed stay and clear as placed)."""
        agent, cancelled, staying = services.agent_revoke(actor=request.user, agent_id=int(pk))
        body = AgentRevocationOutputSerializer(
            {
                "agent": agent,
                "cancelled_orders": [o.pk for o in cancelled],
                "staying_orders": [o.pk for o in staying],
            }
        ).data
        return Response(body)

    @extend_schema(
        responses={200: AgentDecisionOutputSerializer(many=True), **error_responses(401, 404)}
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def decisions(self, request: Request, pk: str) -> Response:
        """The agent's decisions, newest first, each with its explanation (paginated)."""
        page = self.paginate_queryset(selectors.agent_decision_list(agent=self.get_object()))
        return self.get_paginated_response(AgentDecisionOutputSerializer(page, many=True).data)
