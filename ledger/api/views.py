"""The public, read-only ledger API: checkpoints, entries, proofs and subject histories.

Anyone may read it, without logging in: responses are the same for everybody, so
shared caches may keep them. What can never change (an entry, a proof for given sizes, a
checkpoint of a given size) is served as immutable; what follows the latest checkpoint
gets a short max-age.
"""

from django.conf import settings
from django.utils.http import urlencode
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from ledger import selectors
from ledger.api import serializers
from ledger.keys import registry_signer
from registry.api.caching import cached
from registry.api.exceptions import ErrorSerializer
from registry.api.pagination import StandardPagination
from registry.api.renderers import JSONErrorsMixin, PlainTextRenderer
from registry.api.schema import error_responses
from registry.api.throttling import ScopedRateThrottle


class LedgerView(APIView):
    """Public and read-only; throttled per client by THROTTLE_LEDGER, not THROTTLE_ANON."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "ledger"


class CheckpointNoteView(JSONErrorsMixin, LedgerView):
    """The latest checkpoint as a signed note (C2SP tlog-checkpoint), text/plain."""

    renderer_classes = [PlainTextRenderer]

    @extend_schema(
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Signed note."),
            (404, "application/json"): OpenApiResponse(
                ErrorSerializer, description="No checkpoint yet."
            ),
            (429, "application/json"): OpenApiResponse(ErrorSerializer, description="Throttled."),
        },
    )
    def get(self, request: Request) -> Response:
        checkpoint = selectors.checkpoint_latest()
        return cached(request, Response(checkpoint.note), immutable=False)


class CheckpointLatestView(LedgerView):
    """The latest checkpoint, as JSON."""

    @extend_schema(
        responses={200: serializers.CheckpointOutputSerializer, **error_responses(404, 429)}
    )
    def get(self, request: Request) -> Response:
        checkpoint = selectors.checkpoint_latest()
        body = serializers.CheckpointOutputSerializer(checkpoint).data
        return cached(request, Response(body), immutable=False)


class CheckpointPagination(StandardPagination):
    page_size = 100


class CheckpointListView(LedgerView, generics.ListAPIView):
    """Every checkpoint, newest first (paged)."""

    serializer_class = serializers.CheckpointOutputSerializer
    pagination_class = CheckpointPagination
    filter_backends: list = []

    def get_queryset(self):
        return selectors.checkpoint_list()

    @extend_schema(
        responses={200: serializers.CheckpointOutputSerializer(many=True), **error_responses(429)}
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return cached(request, super().get(request, *args, **kwargs), immutable=False)


class CheckpointDetailView(LedgerView):
    """The checkpoint of one tree size."""

    @extend_schema(
        responses={200: serializers.CheckpointOutputSerializer, **error_responses(404, 429)}
    )
    def get(self, request: Request, size: int) -> Response:
        checkpoint = selectors.checkpoint_by_size(size=size)
        body = serializers.CheckpointOutputSerializer(checkpoint).data
        return cached(request, Response(body), immutable=True)


class EntryListView(LedgerView):
    """Entries by sequence range: `limit` entries from `start` (fewer at the end of the log)."""

    @extend_schema(
        operation_id="ledger_entries_list",
        parameters=[serializers.LedgerEntryRangeInputSerializer],
        responses={200: serializers.LedgerEntryPageOutputSerializer, **error_responses(400, 429)},
    )
    def get(self, request: Request) -> Response:
        query = serializers.LedgerEntryRangeInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, limit = query.validated_data["start"], query.validated_data["limit"]
        entries = list(selectors.ledger_entries(start=start, end=start + limit))
        full = len(entries) == limit
        next_url = None
        if full:
            path = reverse("ledger-entry-list", request=request)
            next_url = f"{path}?{urlencode({'start': start + limit, 'limit': limit})}"
        body = {
            "start": start,
            "limit": limit,
            "next": next_url,
            "entries": serializers.LedgerEntryOutputSerializer(entries, many=True).data,
        }
        # A full page can never change; a short one grows as entries are integrated.
        return cached(request, Response(body), immutable=full)


class EntryDetailView(LedgerView):
    """One entry: its canonical bytes (base64), the decoded event, leaf hash and chain."""

    @extend_schema(
        responses={200: serializers.LedgerEntryOutputSerializer, **error_responses(404, 429)}
    )
    def get(self, request: Request, seq: int) -> Response:
        entry = selectors.ledger_entry(seq=seq)
        return cached(
            request, Response(serializers.LedgerEntryOutputSerializer(entry).data), immutable=True
        )


class InclusionProofView(LedgerView):
    """RFC 9162 inclusion proof of entry `seq` in the tree of `size` entries."""

    @extend_schema(
        parameters=[serializers.InclusionProofInputSerializer],
        responses={200: serializers.InclusionProofOutputSerializer, **error_responses(400, 429)},
    )
    def get(self, request: Request) -> Response:
        query = serializers.InclusionProofInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        proof = selectors.ledger_inclusion_proof(**query.validated_data)
        body = serializers.InclusionProofOutputSerializer(proof).data
        return cached(request, Response(body), immutable=True)


class ConsistencyProofView(LedgerView):
    """RFC 9162 consistency proof that the tree of `second` entries extends that of `first`."""

    @extend_schema(
        parameters=[serializers.ConsistencyProofInputSerializer],
        responses={200: serializers.ConsistencyProofOutputSerializer, **error_responses(400, 429)},
    )
    def get(self, request: Request) -> Response:
        query = serializers.ConsistencyProofInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        proof = selectors.ledger_consistency_proof(**query.validated_data)
        body = serializers.ConsistencyProofOutputSerializer(proof).data
        return cached(request, Response(body), immutable=True)


class SubjectHistoryView(LedgerView):
    """Every entry about a subject (e.g. `bundle`, `12`) with its inclusion proof against the
    latest checkpoint, which is included: everything to check the history offline."""

    @extend_schema(
        parameters=[serializers.SubjectHistoryInputSerializer],
        responses={
            200: serializers.SubjectHistoryOutputSerializer,
            **error_responses(400, 404, 429),
        },
    )
    def get(self, request: Request, subject_type: str, subject_id: str) -> Response:
        query = serializers.SubjectHistoryInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        history = selectors.ledger_subject_history(
            key=f"{subject_type}:{subject_id}", **query.validated_data
        )
        body = serializers.SubjectHistoryOutputSerializer(history).data
        return cached(request, Response(body), immutable=False)


class LogKeyHistoryView(LedgerView):
    """The log key's history: the first key, then each `ledger.key_rotated` announcement
    with its inclusion proof in the latest checkpoint (which is included): what an auditor
    needs to follow a key rotation from the key they trust (`python -m ledger.verify`)."""

    @extend_schema(
        responses={200: serializers.LogKeyHistoryOutputSerializer, **error_responses(429)}
    )
    def get(self, request: Request) -> Response:
        body = serializers.LogKeyHistoryOutputSerializer(selectors.log_key_history_proven()).data
        return cached(request, Response(body), immutable=False)


def verifier_key_body() -> dict:
    signer = registry_signer()
    return {
        "origin": settings.REGISTRY_ORIGIN,
        "vkey": signer.vkey,
        "key_id": signer.verifier.key_id.hex(),
        "algorithm": "Ed25519",
    }


class VerifierKeyView(LedgerView):
    """The note verifier key that signs this registry's checkpoints."""

    @extend_schema(responses={200: serializers.VerifierKeyOutputSerializer, **error_responses(429)})
    def get(self, request: Request) -> Response:
        return cached(request, Response(verifier_key_body()), immutable=False, max_age=300)
