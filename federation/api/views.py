"""Federation API: peers, evidence, status, the anchored checkpoint, peer notifications and
read-only mirrors of peers' logs in the same shapes as the ledger's own API."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.http import urlencode
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from certificates.errors import ExportAlreadyImported
from federation import selectors, services, transfers
from federation.api import serializers
from federation.protocol import BUNDLE_CONTENT_TYPE
from federation.replication import mirror_checkpoint_notified
from ledger.keys import registry_signer, registry_witness
from registry.api.caching import IMMUTABLE, SHORT_MAX_AGE, cached
from registry.api.exceptions import ErrorSerializer
from registry.api.renderers import JSONErrorsMixin, PlainTextRenderer
from registry.api.schema import IDEMPOTENCY_KEY, error_responses
from registry.api.throttling import ScopedRateThrottle
from registry.idempotency import idempotent
from registry.public_url import registry_base_url

ORIGIN_PARAMETER = OpenApiParameter(
    "origin",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The mirrored log's origin, as in its checkpoints (it may contain '/').",
)


class PeerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Peer registries. Anyone may read them (keys are public); the issuing body changes them."""

    serializer_class = serializers.PeerOutputSerializer
    filterset_fields = ["status", "is_witness", "is_mirror", "is_partner"]
    ordering_fields = ["id", "origin", "created_at"]

    def get_queryset(self):
        return selectors.peer_list()

    @extend_schema(
        request=serializers.PeerRegisterInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: serializers.PeerOutputSerializer,
            **error_responses(400, 401, 403, 409, 422),
        },
        description="Issuing body: register a peer registry with its keys and roles.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.PeerRegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        peer = services.peer_register(actor=request.user, **data.validated_data)
        return Response(serializers.PeerOutputSerializer(peer).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.PeerUpdateInputSerializer,
        responses={200: serializers.PeerOutputSerializer, **error_responses(400, 401, 403, 404)},
        description="Issuing body: change a peer's URLs, keys, name or roles.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        self.get_object()
        data = serializers.PeerUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        peer = services.peer_update(actor=request.user, peer_id=int(pk), **data.validated_data)
        return Response(serializers.PeerOutputSerializer(peer).data)

    def _status_change(self, request: Request, pk: str, service) -> Response:
        self.get_object()
        data = serializers.PeerReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        peer = service(actor=request.user, peer_id=int(pk), **data.validated_data)
        return Response(serializers.PeerOutputSerializer(peer).data)

    @extend_schema(
        request=serializers.PeerReasonInputSerializer,
        responses={
            200: serializers.PeerOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str) -> Response:
        """Issuing body: stop witnessing, anchoring with and mirroring this peer."""
        return self._status_change(request, pk, services.peer_suspend)

    @extend_schema(
        request=serializers.PeerReasonInputSerializer,
        responses={
            200: serializers.PeerOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def reinstate(self, request: Request, pk: str) -> Response:
        """Issuing body: lift a suspension or a misbehaviour flag (the evidence stays)."""
        return self._status_change(request, pk, services.peer_reinstate)


class EvidenceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Evidence of peers' misbehaviour, as found (public: it is about signed, public data)."""

    filterset_fields = ["peer", "kind"]
    ordering_fields = ["id", "recorded_at"]

    def get_queryset(self):
        return selectors.evidence_list()

    def get_serializer_class(self):
        if self.action == "retrieve":
            return serializers.EvidenceDetailOutputSerializer
        return serializers.EvidenceOutputSerializer


class FederationStatusView(APIView):
    """Every peer: last checkpoint seen, mirror lag, anchoring with it, and anchoring delay."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={200: serializers.FederationStatusOutputSerializer, **error_responses(429)}
    )
    def get(self, request: Request) -> Response:
        return Response(
            serializers.FederationStatusOutputSerializer(selectors.federation_status()).data
        )


def identity_body(request: HttpRequest | None = None) -> dict:
    """The identity document; URLs from REGISTRY_BASE_URL, or the host `request` came to."""
    signer = registry_signer()
    base_url = registry_base_url(request)
    return {
        "origin": settings.REGISTRY_ORIGIN,
        "base_url": base_url,
        "log_vkey": signer.vkey,
        "witness_vkey": registry_witness().cosignature_vkey,
        "witness_url": base_url,
    }


class FederationIdentityView(APIView):
    """What a peer needs to register this registry: origin, URLs and verifier keys."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={200: serializers.FederationIdentityOutputSerializer, **error_responses(429)}
    )
    def get(self, request: Request) -> Response:
        return Response(identity_body(request))


class AnchoredCheckpointView(JSONErrorsMixin, APIView):
    """Our latest checkpoint that reached the quorum, with all its cosignatures.

    text/plain (the default): the signed note, cosignature lines appended, ready for
    `python -m ledger.verify checkpoint --witness-key ... --quorum N --file`. JSON with
    `Accept: application/json` or `?format=json`.
    """

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    renderer_classes = [PlainTextRenderer, JSONRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["txt", "json"], required=False)
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="Signed note with cosignatures."
            ),
            (200, "application/json"): serializers.AnchoredCheckpointOutputSerializer,
            (404, "application/json"): OpenApiResponse(
                ErrorSerializer, description="Nothing anchored yet."
            ),
            (429, "application/json"): OpenApiResponse(ErrorSerializer, description="Throttled."),
        },
    )
    def get(self, request: Request) -> Response:
        anchor = selectors.anchor_latest()
        note = selectors.anchor_note(anchor)
        if request.accepted_renderer.format != "json":
            return cached(request, Response(note), immutable=False)
        cosignatures = sorted(anchor.cosignatures.all(), key=lambda c: c.witness.origin)
        body = {
            "origin": settings.REGISTRY_ORIGIN,
            "size": anchor.size,
            "root": anchor.root,
            "note": note,
            "created_at": anchor.checkpoint_created_at,
            "anchored_at": anchor.anchored_at,
            "quorum": settings.ANCHOR_QUORUM,
            "cosignatures": cosignatures,
            "witness_keys": [c.witness.witness_vkey for c in cosignatures],
            "anchoring_delay": selectors.anchoring_delays(),
        }
        return cached(
            request,
            Response(serializers.AnchoredCheckpointOutputSerializer(body).data),
            immutable=False,
        )


class PeerRequestView(APIView):
    """A POST from a peer registry, authenticated by its Ed25519 signature over the request
    (federation.peer_requests), not by a login."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "ledger"

    def signing_peer(self, request: Request):
        return services.peer_request_authenticate(
            headers=request.headers, method=request.method, path=request.path, body=request.body
        )


class PeerNotifyView(PeerRequestView):
    """A peer says it has a new checkpoint (a signed peer request; see docs/federation.md).

    If we mirror that peer, a replication run is scheduled right away.
    """

    @extend_schema(
        request=serializers.PeerNotifyInputSerializer,
        responses={202: serializers.PeerNotifyOutputSerializer, **error_responses(400, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        peer = self.signing_peer(request)
        data = serializers.PeerNotifyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scheduled = mirror_checkpoint_notified(peer=peer, note=data.validated_data["checkpoint"])
        return Response({"scheduled": scheduled}, status=status.HTTP_202_ACCEPTED)


class PeerTransferView(PeerRequestView):
    """A partner registry delivers a certificate export (a signed peer request).

    The package is verified (signature of the request, the sender's anchored checkpoint
    and witness quorum, inclusion proofs) and the certificates imported or refused; the
    answer carries a receipt signed by this registry. An export received before is
    answered 409 `export_already_imported` with the first receipt in `extra.receipt`.
    """

    @extend_schema(
        request=serializers.TransferPackageSerializer,
        responses={
            201: serializers.TransferReceiptSerializer,
            **error_responses(400, 403, 409, 413, 422, 429),
        },
    )
    def post(self, request: Request) -> Response:
        peer = self.signing_peer(request)
        received, created = transfers.transfer_receive(peer, request.body)
        if not created:
            raise ExportAlreadyImported(
                origin=received.origin,
                export_seq=received.export_seq,
                outcome=received.status,
                receipt=received.receipt,
            )
        return Response(
            serializers.TransferReceiptSerializer(received).data, status=status.HTTP_201_CREATED
        )


# ---------------------------------------------------------------- replication source


class EntryBundleRenderer(BaseRenderer):
    """Lets clients ask for `Accept: application/vnd.gridproof.entry-bundle`."""

    media_type = BUNDLE_CONTENT_TYPE
    format = "bundle"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return bytes(data)


class LogEntryBundleView(JSONErrorsMixin, APIView):
    """Our ledger's entries by range as one binary entry bundle: what peers replicate from.

    Each entry's bytes are preceded by their length (4 bytes, big-endian); the first is
    entry `start`. Only entries already in the tree are served. The same data as
    `/api/v1/ledger/entries/`, without JSON: up to 10 000 entries per request.
    """

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "ledger"
    renderer_classes = [EntryBundleRenderer, JSONRenderer]

    @extend_schema(
        parameters=[serializers.LogEntryBundleInputSerializer],
        responses={
            (200, BUNDLE_CONTENT_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY, description="The entry bundle."
            ),
            **error_responses(400, 429),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        # `?format=bundle` chooses the renderer (DRF reads it first); it is no filter. A
        # QueryDict still, so that its values are read as a query's text.
        params = request.query_params.copy()
        params.pop("format", None)
        query = serializers.LogEntryBundleInputSerializer(data=params)
        query.is_valid(raise_exception=True)
        start, limit = query.validated_data["start"], query.validated_data["limit"]
        bundle, count = selectors.log_entry_bundle(start=start, end=start + limit)
        response = HttpResponse(bundle, content_type=BUNDLE_CONTENT_TYPE)
        response["GridProof-Entries-Start"] = str(start)
        response["GridProof-Entries-Count"] = str(count)
        # A full bundle can never change; a short one grows as entries are integrated.
        response["Cache-Control"] = (
            IMMUTABLE if count == limit else f"public, max-age={SHORT_MAX_AGE}"
        )
        return response


# ---------------------------------------------------------------- mirrors


class MirrorView(APIView):
    """Public and read-only, like the ledger API it mirrors (and throttled like it)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "ledger"


class MirrorListView(MirrorView):
    """The logs this registry mirrors, with their verified sizes."""

    @extend_schema(
        responses={200: serializers.MirrorOutputSerializer(many=True), **error_responses(429)}
    )
    def get(self, request: Request) -> Response:
        return Response(serializers.MirrorOutputSerializer(selectors.mirror_list(), many=True).data)


class MirrorCheckpointNoteView(JSONErrorsMixin, MirrorView):
    """The peer's latest checkpoint whose root this mirror recomputed, as its signed note."""

    renderer_classes = [PlainTextRenderer]

    @extend_schema(
        parameters=[ORIGIN_PARAMETER],
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Signed note."),
            (404, "application/json"): OpenApiResponse(
                ErrorSerializer, description="No mirror of this origin."
            ),
            (429, "application/json"): OpenApiResponse(ErrorSerializer, description="Throttled."),
        },
    )
    def get(self, request: Request, origin: str) -> Response:
        head = selectors.mirror_head(origin=origin)
        checkpoint = selectors.mirror_checkpoint_latest(head=head)
        return cached(request, Response(checkpoint.note), immutable=False)


class MirrorEntryListView(MirrorView):
    """Mirrored entries by range: `limit` entries from `start`."""

    @extend_schema(
        operation_id="federation_mirror_entries_list",
        parameters=[ORIGIN_PARAMETER, serializers.MirrorEntryRangeInputSerializer],
        responses={
            200: serializers.MirroredEntryPageOutputSerializer,
            **error_responses(400, 404, 429),
        },
    )
    def get(self, request: Request, origin: str) -> Response:
        head = selectors.mirror_head(origin=origin)
        query = serializers.MirrorEntryRangeInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, limit = query.validated_data["start"], query.validated_data["limit"]
        entries = list(selectors.mirror_entries(head=head, start=start, end=start + limit))
        full = len(entries) == limit
        next_url = None
        if full:
            next_url = f"{request.path}?{urlencode({'start': start + limit, 'limit': limit})}"
        body = {
            "start": start,
            "limit": limit,
            "next": next_url,
            "entries": serializers.MirroredEntryOutputSerializer(entries, many=True).data,
        }
        return cached(request, Response(body), immutable=full)


class MirrorEntryDetailView(MirrorView):
    """One mirrored entry."""

    @extend_schema(
        parameters=[ORIGIN_PARAMETER],
        responses={200: serializers.MirroredEntryOutputSerializer, **error_responses(404, 429)},
    )
    def get(self, request: Request, origin: str, seq: str) -> Response:
        head = selectors.mirror_head(origin=origin)
        entry = selectors.mirror_entry(head=head, seq=int(seq))
        return cached(
            request, Response(serializers.MirroredEntryOutputSerializer(entry).data), immutable=True
        )


class MirrorInclusionProofView(MirrorView):
    """RFC 9162 inclusion proof of a mirrored entry, from the mirror's own tree."""

    @extend_schema(
        parameters=[ORIGIN_PARAMETER, serializers.MirrorInclusionProofInputSerializer],
        responses={
            200: serializers.MirrorInclusionProofOutputSerializer,
            **error_responses(400, 404, 429),
        },
    )
    def get(self, request: Request, origin: str) -> Response:
        head = selectors.mirror_head(origin=origin)
        query = serializers.MirrorInclusionProofInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        proof = selectors.mirror_inclusion_proof(head=head, **query.validated_data)
        body = serializers.MirrorInclusionProofOutputSerializer(proof).data
        return cached(request, Response(body), immutable=True)


class MirrorConsistencyProofView(MirrorView):
    """RFC 9162 consistency proof between two sizes of a mirrored log."""

    @extend_schema(
        parameters=[ORIGIN_PARAMETER, serializers.MirrorConsistencyProofInputSerializer],
        responses={
            200: serializers.MirrorConsistencyProofOutputSerializer,
            **error_responses(400, 404, 429),
        },
    )
    def get(self, request: Request, origin: str) -> Response:
        head = selectors.mirror_head(origin=origin)
        query = serializers.MirrorConsistencyProofInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        proof = selectors.mirror_consistency_proof(head=head, **query.validated_data)
        body = serializers.MirrorConsistencyProofOutputSerializer(proof).data
        return cached(request, Response(body), immutable=True)
