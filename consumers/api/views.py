"""Households, sites, consents, communities and their reports. Views call services/selectors."""

import csv
import datetime as dt
import io
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consumers import errors, reports, selectors, services
from consumers.api import serializers as s
from registry.api.schema import IDEMPOTENCY_KEY, error_responses
from registry.idempotency import idempotent

PERIOD = [
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="Default: 24 hours before end."),
    OpenApiParameter("end", OpenApiTypes.DATETIME, description="Default: this hour's start."),
]
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="text/csv")


def _period(request: Request, serializer=s.PeriodQuerySerializer) -> dict[str, Any]:
    query = serializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    values = dict(query.validated_data)
    if "end" not in values:
        values["end"] = timezone.now().replace(minute=0, second=0, microsecond=0)
    if "start" not in values:
        values["start"] = values["end"] - dt.timedelta(days=1)
    return values


def _csv(rows: list[dict[str, Any]], filename: str) -> HttpResponse:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# -- households ---------------------------------------------------------------------------


class HouseholdView(APIView):
    """A person's household: register it, read it."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=s.HouseholdRegisterInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.HouseholdOutputSerializer, **error_responses(400, 401, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        """Take part as a household: name, address; no company needed."""
        data = s.HouseholdRegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        household = services.household_register(actor=request.user, **data.validated_data)
        return Response(s.HouseholdOutputSerializer(household).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.HouseholdOutputSerializer, **error_responses(401, 404)})
    def get(self, request: Request) -> Response:
        """Your household."""
        household = selectors.household_for_user(request.user)
        if household is None:
            raise errors.HouseholdNotFound()
        return Response(s.HouseholdOutputSerializer(household).data)


def _own_household(request: Request):
    household = selectors.household_for_user(request.user)
    if household is None:
        raise errors.HouseholdNotFound()
    return household


class HouseholdExportView(APIView):
    """Everything the registry holds about your household (GDPR access and portability)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401, 404)})
    def get(self, request: Request) -> HttpResponse:
        """All of it as one JSON document."""
        body = json.dumps(
            selectors.household_export(household=_own_household(request)),
            cls=DjangoJSONEncoder,
            indent=1,
        )
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="household.json"'
        return response


class HouseholdExportCsvView(APIView):
    """Everything as CSV: one row per record, the kind of record in the first column."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "text/csv"): CSV_RESPONSE, **error_responses(401, 404)})
    def get(self, request: Request) -> HttpResponse:
        """Readings, sites, meters, consents and accesses in one CSV file."""
        data = selectors.household_export(household=_own_household(request))
        rows = []
        for kind in ("sites", "consents", "accesses", "readings"):
            for item in data[kind]:
                rows.append(
                    {
                        "record": kind[:-1] if kind != "accesses" else "access",
                        "data": json.dumps(item, cls=DjangoJSONEncoder, sort_keys=True),
                    }
                )
        return _csv(rows or [{"record": "", "data": ""}], "household.csv")


class DataAccessViewSet(viewsets.ReadOnlyModelViewSet):
    """Who read your household's data: when, what, under which grant; refused reads too."""

    serializer_class = s.DataAccessOutputSerializer
    ordering_fields = ["id", "at"]
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return selectors.data_access_list(user=self.request.user)


# -- sites --------------------------------------------------------------------------------


class SiteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A household's grid connection points; the issuing body and community admins confirm."""

    serializer_class = s.SiteOutputSerializer
    ordering_fields = ["id", "name", "created_at"]
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return selectors.site_list(user=self.request.user).prefetch_related("meters__meter")

    @extend_schema(
        request=s.SiteCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.SiteOutputSerializer, **error_responses(400, 401, 403, 404, 409, 422)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        """Your household adds a site with its metering-point id (EAN-18, check digit)."""
        data = s.SiteCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        site = services.site_register(actor=request.user, **data.validated_data)
        return Response(s.SiteOutputSerializer(site).data, status=status.HTTP_201_CREATED)

    _SITE_DECISION = extend_schema(
        request=s.SiteDecisionInputSerializer,
        responses={200: s.SiteOutputSerializer, **error_responses(400, 401, 403, 404, 409)},
    )

    def _decide(self, request: Request, pk: str, service, serializer=None) -> Response:
        data = (serializer or s.SiteDecisionInputSerializer)(data=request.data)
        data.is_valid(raise_exception=True)
        site = service(actor=request.user, site_id=int(pk), **data.validated_data)
        return Response(s.SiteOutputSerializer(site).data)

    @_SITE_DECISION
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        """The issuing body or an admin of the household's community confirms the site."""
        return self._decide(request, pk, services.site_confirm)

    @extend_schema(
        request=s.SiteRejectInputSerializer,
        responses={200: s.SiteOutputSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """The site is not the household's; a reason is required."""
        return self._decide(request, pk, services.site_reject, s.SiteRejectInputSerializer)

    @extend_schema(
        request=s.SiteMeterLinkInputSerializer,
        responses={201: s.SiteMeterOutputSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def meters(self, request: Request, pk: str) -> Response:
        """Attach one of your meters to the site as import, export, production, storage or EV."""
        data = s.SiteMeterLinkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.site_meter_link(actor=request.user, site_id=int(pk), **data.validated_data)
        return Response(s.SiteMeterOutputSerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: s.SiteReadingsUploadOutputSerializer,
            201: s.SiteReadingsUploadOutputSerializer,
            **error_responses(400, 401, 403, 404, 409, 422),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def readings(self, request: Request, pk: str) -> Response:
        """Signed readings (a JSON array, as POST /readings/) of this site's meters only."""
        rows = request.data if isinstance(request.data, list) else [request.data]
        result = services.site_readings_submit(actor=request.user, site_id=int(pk), rows=rows)
        body = {
            "status": result.status,
            "batch_id": result.batch.pk if result.batch else None,
            "rows": result.rows,
            "stored": result.stored,
            "duplicates": result.duplicates,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.batch else 200)

    @extend_schema(
        parameters=[
            *PERIOD,
            OpenApiParameter("resolution", OpenApiTypes.STR, enum=["hourly", "daily", "monthly"]),
        ],
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"])
    def data(self, request: Request, pk: str) -> Response:
        """The site's meter data per hour, day or month: yours, or under a grant (logged)."""
        query = _period(request, s.SiteReadingsQuerySerializer)
        return Response(selectors.site_readings_read(user=request.user, site_id=int(pk), **query))

    @extend_schema(
        parameters=PERIOD,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="hourly-matching")
    def hourly_matching(self, request: Request, pk: str) -> Response:
        """Consumption against same-hour certificates: CFE score per hour, day, year; CO2."""
        return Response(
            reports.hourly_matching_read(user=request.user, site_id=int(pk), **_period(request))
        )

    @extend_schema(
        parameters=PERIOD,
        responses={(200, "text/csv"): CSV_RESPONSE, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="hourly-matching/csv")
    def hourly_matching_csv(self, request: Request, pk: str) -> HttpResponse:
        """The hourly rows of the matching report as CSV."""
        report = reports.hourly_matching_read(
            user=request.user, site_id=int(pk), **_period(request)
        )
        return _csv(report["hours"], f"hourly-matching-site-{pk}.csv")


# -- consents -------------------------------------------------------------------------------


class ConsentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Grants your household gave (and grants given to your organisation)."""

    serializer_class = s.ConsentOutputSerializer
    ordering_fields = ["id", "valid_from", "created_at"]
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return selectors.consent_list(user=self.request.user)

    @extend_schema(
        request=s.ConsentGrantInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.ConsentOutputSerializer, **error_responses(400, 401, 403, 404, 409, 422)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        """Grant an organisation access to a site's meters at a resolution for a period."""
        data = s.ConsentGrantInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        consent = services.consent_grant(actor=request.user, **data.validated_data)
        return Response(s.ConsentOutputSerializer(consent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={200: s.ConsentOutputSerializer, **error_responses(401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        """End the grant now; later reads are refused and logged as refused."""
        consent = services.consent_revoke(actor=request.user, consent_id=int(pk))
        return Response(s.ConsentOutputSerializer(consent).data)


# -- communities ----------------------------------------------------------------------------


class CommunityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Energy communities: public name, area, key and price; members act through services."""

    serializer_class = s.CommunityOutputSerializer
    ordering_fields = ["id", "name", "created_at"]

    def get_queryset(self):
        return selectors.community_list(user=self.request.user)

    @extend_schema(
        request=s.CommunityCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.CommunityOutputSerializer, **error_responses(400, 401, 403, 422)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        """An organisation's admin sets up a community."""
        data = s.CommunityCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        community = services.community_create(actor=request.user, **data.validated_data)
        return Response(s.CommunityOutputSerializer(community).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.CommunityJoinInputSerializer,
        responses={
            201: s.CommunityMemberOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def members(self, request: Request, pk: str) -> Response:
        """Your household or organisation joins from `joined_at` (default: this quarter hour)."""
        data = s.CommunityJoinInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.community_member_join(
            actor=request.user, community_id=int(pk), **data.validated_data
        )
        return Response(
            s.CommunityMemberOutputSerializer(member).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=s.CommunityKeyInputSerializer,
        responses={200: s.CommunityOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    def key(self, request: Request, pk: str) -> Response:
        """Static shares (adding up to exactly 1) or the dynamic key."""
        data = s.CommunityKeyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        community = services.community_key_set(
            actor=request.user, community_id=int(pk), **data.validated_data
        )
        return Response(s.CommunityOutputSerializer(community).data)

    @extend_schema(
        request=s.CommunityDeviceInputSerializer,
        responses={201: s.CommunityOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    def devices(self, request: Request, pk: str) -> Response:
        """Share a production device co-owned by members."""
        data = s.CommunityDeviceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.community_device_add(
            actor=request.user, community_id=int(pk), **data.validated_data
        )
        return Response(
            s.CommunityOutputSerializer(link.community).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        parameters=PERIOD,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"], permission_classes=[permissions.IsAuthenticated])
    def allocation(self, request: Request, pk: str) -> Response:
        """Each interval's shared production split by the key: allocated, imported, exported,
        money at the internal price (operator: every member under consent; member: itself)."""
        return Response(
            reports.community_allocation_read(
                user=request.user, community_id=int(pk), **_period(request)
            )
        )

    @extend_schema(
        request=s.CommunityDistributionInputSerializer,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404, 409)},
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[permissions.IsAuthenticated],
        url_path="distributions",
    )
    def distributions(self, request: Request, pk: str) -> Response:
        """The operator moves each complete, issued hour's certificates of the shared devices
        to the members' accounts by the key; hours already distributed are skipped."""
        data = s.CommunityDistributionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.community_certificates_distribute(
            actor=request.user, community_id=int(pk), **data.validated_data
        )
        return Response(report.as_dict())


class CommunityMemberLeaveView(APIView):
    """End a membership."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=s.CommunityLeaveInputSerializer,
        responses={
            200: s.CommunityMemberOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        """The member or the community's admin ends the membership at `left_at`."""
        data = s.CommunityLeaveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.community_member_leave(
            actor=request.user, member_id=int(pk), **data.validated_data
        )
        return Response(s.CommunityMemberOutputSerializer(member).data)
