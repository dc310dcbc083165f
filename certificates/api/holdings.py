"""GET /api/v1/accounts/{id}/holdings/: what an account holds, with totals by dimension."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import account_list
from certificates import selectors
from registry.api.schema import error_responses


class HoldingRowOutputSerializer(serializers.Serializer):
    technology = serializers.CharField(help_text="EECS technology code.")
    country = serializers.CharField()
    vintage = serializers.IntegerField(help_text="Year the production period starts (UTC).")
    status = serializers.CharField(help_text="active, reserved, retired, expired, …")
    volume_wh = serializers.IntegerField()
    bundles = serializers.IntegerField()


def _total(name: str, field: serializers.Field):
    return type(
        f"HoldingsBy{name.title()}OutputSerializer",
        (serializers.Serializer,),
        {name: field, "volume_wh": serializers.IntegerField()},
    )


class HoldingsOutputSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    account_number = serializers.CharField()
    volume_wh = serializers.IntegerField(help_text="Every unit the account holds (split excluded).")
    active_wh = serializers.IntegerField(help_text="Units free to transfer or retire.")
    bundles = serializers.IntegerField()
    by_status = _total("status", serializers.CharField())(many=True)
    by_technology = _total("technology", serializers.CharField())(many=True)
    by_country = _total("country", serializers.CharField())(many=True)
    by_vintage = _total("vintage", serializers.IntegerField())(many=True)
    rows = HoldingRowOutputSerializer(many=True)


class AccountHoldingsView(APIView):
    """An account's balance: units held by technology, country, vintage and status."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: HoldingsOutputSerializer, **error_responses(401, 404)})
    def get(self, request: Request, pk: int) -> Response:
        account = account_list(user=request.user).filter(pk=pk).first()
        if account is None:
            raise Http404("No such account.")
        rows = selectors.account_holdings(account_ids=[account.pk])
        body = {
            "account": account.pk,
            "account_number": account.number,
            **selectors.holdings_totals(rows),
            "rows": rows,
        }
        return Response(HoldingsOutputSerializer(body).data)
